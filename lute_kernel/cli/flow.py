"""``lute-kernel flow``: upstream LUTE DAG files run as Prefect flows — run, show, validate, deploy, trigger.

Owns the command line of flows and their exit codes (0: every step that ran completed; 1: a step
failed or was cancelled, or the flow run did not complete; 2: bad input — the DAG, the config, a
Prefect server that does not answer — with nothing started and nothing written). Prefect is
imported only inside the commands that need it (``run``, ``deploy``, ``trigger``), after the whole
flow has been checked; ``show`` and ``validate`` never import it. Everything else is ``flows``.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated, Any, Dict, Optional

import typer

from lute_kernel.cli.common import ConfigPath, RuntimeOption, SiteOption, reported_errors
from lute_kernel.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_TASK_FAILED

flow_app = typer.Typer(
    help="Run upstream LUTE DAG files (!LUTE_DAG) as Prefect flows: here, as Slurm jobs, or as deployments"
    " the eLog triggers.",
    no_args_is_help=True,
)

DagArgument = Annotated[Path, typer.Argument(help="The DAG file (upstream LUTE's !LUTE_DAG YAML).")]
BackendOption = Annotated[
    Optional[str],
    typer.Option("--backend", "-b", help="local (this host) or slurm (one job per step); default: the site's."),
]
ExperimentOption = Annotated[
    Optional[str], typer.Option("--experiment", "-e", help="The run's experiment ($EXPERIMENT in every step).")
]
RunOption = Annotated[
    Optional[str], typer.Option("--run", "-r", help="The run number ($RUN, $RUN_NUM in every step; 12_<stamp> is 12).")
]
RunTypeOption = Annotated[
    Optional[str],
    typer.Option("--run-type", help="For !run_type: DARK, GEOM, DATA, … (default: the eLog's, if the site has one)."),
]
DaqOption = Annotated[
    Optional[str],
    typer.Option("--daq", help="For !branch_daq2: daq1 (LCLS-I) or daq2 (LCLS-II) (default: the eLog's)."),
]
AllowUnknownOption = Annotated[
    bool,
    typer.Option("--allow-unknown", help="Skip steps whose Task this kernel does not ship (default: refuse the DAG)."),
]


def _options(dag: Path, config: Path, **values: Any) -> Any:
    from flows.runtime import FlowOptions

    sbatch = tuple(shlex.split(values.pop("sbatch_args") or "")) if "sbatch_args" in values else ()
    return FlowOptions(str(dag.resolve()), str(config.resolve()), sbatch_args=sbatch, **values)


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
) -> None:
    """Check the whole flow, then run it as a Prefect flow, with a live table of its steps."""
    from flows.arp import ArpContext
    from flows.local_hooks import LocalHooks
    from flows.runtime import prepare_flow

    options = _options(
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
    try:
        code = _run_flow(prepared, LocalHooks(prepared, server, None, arp))
    finally:
        if server is not None:
            server.close()
    raise typer.Exit(code)


def _run_flow(prepared: Any, hooks: Any) -> int:
    from flows.local_hooks import install
    from lute_kernel.cli.flow_display import FlowDisplay

    with _PrefectSettings(prepared.site):
        import logging

        from flows.lute_dag import lute_dag

        quiet = _RunLogFilter()
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
    typer.echo(f"flow: {state.name}" + (f" — {state.message}" if state.message else ""))
    return EXIT_TASK_FAILED if failed or not state.is_completed() else EXIT_OK


class _RunLogFilter:
    """Keep Prefect's console for Prefect's own warnings; the flow's and steps' lines are in the live table."""

    def filter(self, record: Any) -> bool:
        return not str(record.name).startswith(("prefect.flow_runs", "prefect.task_runs"))


class _PrefectSettings:
    """The Prefect API URL to use: $PREFECT_API_URL, else the site's, else Prefect's own (or a temporary server).

    A URL that does not answer is bad input (exit 2) before any step starts.
    """

    def __init__(self, site: Any) -> None:
        self.site = site
        self._context: Any = None

    def __enter__(self) -> None:
        from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

        from flows.deployments import api_problem

        url = os.environ.get("PREFECT_API_URL") or self.site.flows.api_url
        source = "PREFECT_API_URL" if os.environ.get("PREFECT_API_URL") else f"flows.api_url of site {self.site.name}"
        if not url and get_current_settings().api.url:
            url, source = get_current_settings().api.url, "the Prefect profile's PREFECT_API_URL"
        if url:
            problem = api_problem(url)
            if problem:
                typer.echo(
                    f"error: the Prefect server at {source}={url} does not answer ({problem}); start it"
                    " (`prefect server start`) or unset PREFECT_API_URL to run with a temporary local server",
                    err=True,
                )
                raise typer.Exit(EXIT_BAD_INPUT)
        else:
            typer.echo(
                "flow: no Prefect server configured (PREFECT_API_URL): starting Prefect's temporary one", err=True
            )
        self._context = temporary_settings(updates={PREFECT_API_URL: url}) if url else None
        if self._context is not None:
            self._context.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._context is not None:
            self._context.__exit__(*exc)


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

    options = _options(
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


@flow_app.command("deploy")
def deploy(
    dag: DagArgument,
    config: ConfigPath,
    pool: Annotated[
        Optional[str], typer.Option("--pool", help="Process work pool (default: the site's flows.work_pool).")
    ] = None,
    name: Annotated[
        Optional[str], typer.Option("--name", help="Deployment name (default: the site's, 'lute').")
    ] = None,
    backend: BackendOption = None,
    site: SiteOption = None,
    runtime: RuntimeOption = None,
    allow_unknown: AllowUnknownOption = False,
) -> None:
    """Check what does not depend on the run, then create or update the deployment lute_dag/NAME on POOL."""
    from flows.runtime import prepare_flow
    from lute_kernel.sites import load_site

    with reported_errors():
        profile = load_site(site)
        options = _options(
            dag, config, backend=backend, site=profile.name, runtime=runtime, allow_unknown=allow_unknown
        )
        prepared = prepare_flow(options, os.environ, mode="deploy", all_branches=True)
    pool = pool or profile.flows.work_pool
    name = name or profile.flows.deployment
    if not pool:
        typer.echo("error: no work pool: give --pool or set flows.work_pool in the site profile", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    parameters: Dict[str, Any] = {
        "dag": options.dag,
        "config": options.config,
        "backend": prepared.backend,
        "site": profile.name,
        "runtime": runtime,
        "allow_unknown": allow_unknown,
    }
    with _ServerRequired(profile):
        from flows.deployments import deploy as create_deployment
        from flows.deployments import ensure_process_pool

        created = ensure_process_pool(pool)
        deployment_id = create_deployment(name, pool, parameters, description=f"lute-kernel flow of {dag.name}")
    for note in prepared.plan.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"deployed lute_dag/{name} ({deployment_id}) on {'new ' if created else ''}process work pool {pool!r}")
    typer.echo(f"  worker:  prefect worker start --pool {pool}")
    typer.echo(f"  trigger: lute-kernel flow trigger {name} --experiment EXP --run RUN   (the eLog's ARP job)")


class _ServerRequired(_PrefectSettings):
    """As ``_PrefectSettings``, but a temporary server will not do: deployments live on a real one."""

    def __enter__(self) -> None:
        if not (os.environ.get("PREFECT_API_URL") or self.site.flows.api_url):
            from prefect.settings import get_current_settings

            if not get_current_settings().api.url:
                typer.echo(
                    "error: no Prefect server: set PREFECT_API_URL (or flows.api_url in the site profile)", err=True
                )
                raise typer.Exit(EXIT_BAD_INPUT)
        super().__enter__()


@flow_app.command("trigger")
def trigger(
    name: Annotated[Optional[str], typer.Argument(help="Deployment name (lute_dag/NAME; default: the site's).")] = None,
    experiment: ExperimentOption = None,
    run_: RunOption = None,
    run_type: RunTypeOption = None,
    daq: DaqOption = None,
    site: SiteOption = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Follow the flow run to its end.")] = True,
) -> None:
    """Start a run of a deployment for an experiment and run (what the eLog's ARP job calls); follow it.

    Without --experiment/--run it reads $EXPERIMENT and $RUN_NUM, as the ARP sets them. The ARP's
    JID_UPDATE_COUNTERS, ARP_ROOT_JOB_ID, ARP_LOCATION and Authorization travel with the flow run.
    """
    from flows.arp import ArpContext
    from lute_kernel.sites import load_site

    with reported_errors():
        profile = load_site(site)
    experiment = experiment or os.environ.get("EXPERIMENT")
    run_ = run_ or os.environ.get("RUN_NUM")
    if not experiment or not run_:
        typer.echo("error: give --experiment and --run (or set EXPERIMENT and RUN_NUM, as the ARP does)", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    deployment = name if name and "/" in name else f"lute_dag/{name or profile.flows.deployment}"
    arp = ArpContext.from_env(os.environ)
    with _ServerRequired(profile):
        code = _trigger(deployment, experiment, run_, run_type, daq, arp, follow, profile.flows.poll_seconds)
    raise typer.Exit(code)


def _trigger(
    deployment: str,
    experiment: str,
    run: str,
    run_type: Optional[str],
    daq: Optional[str],
    arp: Any,
    follow: bool,
    poll: float,
) -> int:
    from prefect.exceptions import ObjectNotFound

    from flows.deployments import follow as follow_run
    from flows.deployments import trigger as start_run

    arp_parameters: Dict[str, Any] = dict(arp.public())
    if arp.authorization:
        from flows.secrets import store_secret

        arp_parameters["authorization_block"] = store_secret(arp.authorization)
    parameters = {"experiment": experiment, "run": run, "run_type": run_type, "daq": daq, "arp": arp_parameters}
    try:
        flow_run_id = start_run(deployment, {k: v for k, v in parameters.items() if v is not None})
    except ObjectNotFound:
        if arp_parameters.get("authorization_block"):
            from flows.secrets import read_secret

            read_secret(arp_parameters["authorization_block"])  # reads and deletes it: nobody will
        typer.echo(f"error: no deployment {deployment!r} on this Prefect server (`lute-kernel flow deploy`)", err=True)
        return EXIT_BAD_INPUT
    typer.echo(f"flow run {flow_run_id} of {deployment} for {experiment} run {run}")
    if not follow:
        return EXIT_OK
    ended = follow_run(
        flow_run_id,
        poll_seconds=poll,
        on_log=lambda step, level, text: typer.echo(f"[{step}] {level:<7} {text}"),
        on_state=lambda step, state: typer.echo(f"[{step}] {state}"),
    )
    for row in ended.table:
        typer.echo(
            f"  {row.get('step', '')!s:<24} {row.get('task', '')!s:<22} {row.get('state', '')!s:<10}"
            f" {row.get('seconds') or '':>8} row {row.get('row') if row.get('row') is not None else '-'}"
        )
    typer.echo(f"flow run {ended.state_name}" + (f" — {ended.message}" if ended.message else ""))
    return EXIT_OK if ended.ok else EXIT_TASK_FAILED
