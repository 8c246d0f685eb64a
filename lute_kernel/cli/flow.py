"""``lute-kernel flow``: upstream LUTE DAG files run as Prefect flows — run, show, validate, deploy, trigger.

Owns the command line of flows and their exit codes (0: every step that ran completed; 1: a step
failed or was cancelled, or the flow run did not complete; 2: bad input — the DAG, the config, a
Prefect server that does not answer — with nothing started and nothing written). Prefect is
imported only inside the commands that need it (``run``, ``deploy``, ``trigger``), after the whole
flow has been checked; ``show`` and ``validate`` never import it. Everything else is ``flows``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from lute_kernel.cli.common import ConfigPath, RuntimeOption, SiteOption, reported_errors
from lute_kernel.cli.flow_common import (
    AllowUnknownOption,
    BackendOption,
    DagArgument,
    DaqOption,
    ExperimentOption,
    PrefectSettings,
    RunLogFilter,
    RunOption,
    RunTypeOption,
    flow_options,
)
from lute_kernel.cli.flow_deploy import deploy, trigger
from lute_kernel.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_TASK_FAILED

flow_app = typer.Typer(
    help="Run upstream LUTE DAG files (!LUTE_DAG) as Prefect flows: here, as Slurm jobs, or as deployments"
    " the eLog triggers.",
    no_args_is_help=True,
)

flow_app.command("deploy")(deploy)
flow_app.command("trigger")(trigger)


@flow_app.command("run")
def run(
    dag: DagArgument,
    config: ConfigPath,
    backend: BackendOption = None,
    experiment: ExperimentOption = None,
    run_: RunOption = None,
    run_type: RunTypeOption = None,
    daq: DaqOption = None,
    max_parallel: Annotated[
        Optional[int], typer.Option("--max-parallel", "-j", min=1, help="Steps at once (default: CPUs; slurm: 64).")
    ] = None,
    retries: Annotated[Optional[int], typer.Option("--retries", min=0, help="Retries of a failed step.")] = None,
    retry_delay: Annotated[
        Optional[float], typer.Option("--retry-delay", min=0, help="Seconds between retries.")
    ] = None,
    site: SiteOption = None,
    runtime: RuntimeOption = None,
    allow_unknown: AllowUnknownOption = False,
    sbatch_args: Annotated[
        Optional[str],
        typer.Option("--sbatch-args", help="More sbatch options for every slurm step, e.g. '--overcommit'."),
    ] = None,
    profile: Annotated[
        bool,
        typer.Option(
            "--profile", help="At the end, where the local steps' time went: each phase's median (or LUTE_PROFILE=1)."
        ),
    ] = False,
) -> None:
    """Check the whole flow, then run it as a Prefect flow, with a live table of its steps."""
    from flows.arp import ArpContext
    from flows.local_hooks import LocalHooks
    from flows.runtime import prepare_flow

    options = flow_options(
        dag, config, experiment=experiment, run=run_, run_type=run_type, daq=daq, backend=backend, site=site,
        runtime=runtime, max_parallel=max_parallel, retries=retries, retry_delay=retry_delay,
        allow_unknown=allow_unknown, sbatch_args=sbatch_args,
    )  # fmt: skip
    arp = ArpContext.from_env(os.environ)
    with reported_errors():
        prepared = prepare_flow(options, os.environ, authorization=arp.authorization)
    server = None
    if prepared.backend == "local" and os.environ.get("LUTE_FLOW_NODE_SERVER", "1") != "0":
        from flows.backends.node_server import NodeServer

        server = NodeServer.fork()  # before Prefect starts its threads: the steps' kernels fork from it
        _expect_first_step(server, prepared)
    try:
        code = _run_flow(prepared, LocalHooks(prepared, server, None, arp), profile=profile)
    finally:
        if server is not None:
            server.close()
    raise typer.Exit(code)


def _expect_first_step(server: Any, prepared: Any) -> None:
    """Start the first step's launch in the node server while Prefect is imported and the flow run created."""
    from flows.backends.local import wire
    from flows.runtime import first_request

    request = first_request(prepared)
    if request is not None:
        server.expect(wire(request))


def _run_flow(prepared: Any, hooks: Any, *, profile: bool = False) -> int:
    from flows.local_hooks import install
    from lute_kernel.cli.flow_display import FlowDisplay

    with PrefectSettings(prepared.site, foreground=True):
        import logging

        from flows.lute_dag import lute_dag

        quiet = RunLogFilter()
        for handler in logging.getLogger().handlers:  # the live table shows the runs' lines itself
            if type(handler).__name__ == "PrefectConsoleHandler":
                handler.addFilter(quiet)
        labels = [(p.step.label, p.task or p.step.task_name) for p in prepared.plan.steps]
        options = prepared.options
        with FlowDisplay(labels) as display:
            hooks.observer = display
            install(hooks)
            state: Any = lute_dag(
                dag=options.dag, config=options.config, experiment=options.experiment, run=options.run,
                run_type=options.run_type, daq=options.daq, backend=prepared.backend, site=prepared.site.name,
                runtime=options.runtime, max_parallel=options.max_parallel, retries=options.retries,
                retry_delay=options.retry_delay, allow_unknown=options.allow_unknown,
                sbatch_args=list(options.sbatch_args), return_state=True,
            )  # fmt: skip
    failed = display.failed()
    from lute_kernel.profile import profiling_requested

    if profile or profiling_requested():
        typer.echo(display.profile_report(), err=True)
    typer.echo(f"flow: {state.name}" + (f" — {state.message}" if state.message else ""))
    return EXIT_TASK_FAILED if failed or not state.is_completed() else EXIT_OK


@flow_app.command("show")
def show(
    dag: DagArgument,
    config: Annotated[
        Optional[Path], typer.Option("--config", "-c", help="Also check each step and print the command it runs.")
    ] = None,
    backend: BackendOption = None,
    experiment: ExperimentOption = None,
    run_: RunOption = None,
    run_type: RunTypeOption = None,
    daq: DaqOption = None,
    site: SiteOption = None,
    runtime: RuntimeOption = None,
) -> None:
    """Draw the DAG: nodes, trigger rules, sweeps, branches, backends; with -c, each step's exact command."""
    from flows.dag_yaml import load_dag
    from flows.graph import expand
    from flows.runtime import step_environment
    from flows.show import render
    from flows.validation import plan_flow
    from lute_kernel.registry import discover
    from lute_kernel.sites import load_site

    with reported_errors():
        loaded = load_dag(dag)
        graph = expand(loaded, all_branches=True)
        registry = discover()
        profile = load_site(site)
        chosen = backend or profile.flows.backend
        resolve = {
            n.task_name: registry.get(n.task_name).name if registry.knows(n.task_name) else None for n in loaded.nodes()
        }
        plan = None
        if config is not None:
            env = step_environment(os.environ, experiment, run_)
            plan = plan_flow(
                graph, config, registry=registry, site=profile, backend=chosen, runtime=runtime, host_env=env,
                experiment=env.get("EXPERIMENT"), allow_unknown=True, mode="show",
            )  # fmt: skip
    for line in render(loaded, graph.steps, resolve=resolve, plan=plan, run_type=run_type, daq=daq, backend=chosen):
        typer.echo(line)
    raise typer.Exit(EXIT_BAD_INPUT if plan is not None and plan.problems() else EXIT_OK)


@flow_app.command("validate")
def validate(
    dag: DagArgument,
    config: ConfigPath,
    backend: BackendOption = None,
    experiment: ExperimentOption = None,
    run_: RunOption = None,
    run_type: RunTypeOption = None,
    daq: DaqOption = None,
    site: SiteOption = None,
    runtime: RuntimeOption = None,
    allow_unknown: AllowUnknownOption = False,
) -> None:
    """Check the whole flow as `flow run` would (every branch when the run type or DAQ is not given); run nothing."""
    from flows.runtime import prepare_flow

    options = flow_options(
        dag, config, experiment=experiment, run=run_, run_type=run_type, daq=daq, backend=backend, site=site,
        runtime=runtime, allow_unknown=allow_unknown,
    )  # fmt: skip
    with reported_errors():
        prepared = prepare_flow(options, os.environ, all_branches=run_type is None or daq is None)
    deferred = [f"{p.step.label}: {field}" for p in prepared.plan.steps for field in p.deferred]
    unknown = [p.step.label for p in prepared.plan.steps if p.task is None]
    typer.echo(f"ok: {dag}: {len(prepared.plan.steps)} steps valid with {config} (backend {prepared.backend})")
    for line in deferred:
        typer.echo(f"  deferred: {line}, resolved when it starts")
    if unknown:
        typer.echo(f"  skipped (unknown Task): {', '.join(unknown)}")
