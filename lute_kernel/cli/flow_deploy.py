"""``lute-kernel flow deploy`` and ``flow trigger``: the deployment the eLog triggers at the end of each run.

Owns the two commands' arguments and output; ``flows.deployments`` does the Prefect work. ``deploy``
checks what does not depend on the run before it registers anything; ``trigger`` reads the ARP's
variables (``EXPERIMENT``, ``RUN_NUM``, ``JID_UPDATE_COUNTERS``, …) when not given, starts the flow
run, follows it, and exits with its result (0 completed, 1 not, 2 bad input).
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Dict, Optional

import typer

from lute_kernel.cli.common import ConfigPath, RuntimeOption, SiteOption, reported_errors
from lute_kernel.cli.flow_common import (
    AllowUnknownOption,
    BackendOption,
    DagArgument,
    DaqOption,
    ExperimentOption,
    RunOption,
    RunTypeOption,
    ServerRequired,
    flow_options,
)
from lute_kernel.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_TASK_FAILED


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
        options = flow_options(
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
    with ServerRequired(profile):
        from flows.deployments import deploy as create_deployment
        from flows.deployments import ensure_process_pool

        created = ensure_process_pool(pool)
        deployment_id = create_deployment(name, pool, parameters, description=f"lute-kernel flow of {dag.name}")
    for note in prepared.plan.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"deployed lute_dag/{name} ({deployment_id}) on {'new ' if created else ''}process work pool {pool!r}")
    typer.echo(f"  worker:  prefect worker start --pool {pool}")
    typer.echo(f"  trigger: lute-kernel flow trigger {name} --experiment EXP --run RUN   (the eLog's ARP job)")


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
    with ServerRequired(profile):
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
