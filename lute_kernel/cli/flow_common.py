"""What the ``lute-kernel flow`` commands share: their options, and the Prefect server they talk to.

Owns the option types, turning options into ``flows.runtime.FlowOptions``, and the choice of the
Prefect API (``$PREFECT_API_URL``, else the site's ``flows.api_url``, else Prefect's own setting,
else — for ``flow run`` only — a temporary local server), checked before anything starts: a server
that does not answer is bad input. Imports Prefect only inside the settings' ``__enter__``.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated, Any, Dict, Optional

import typer

from lute_kernel.errors import EXIT_BAD_INPUT

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


def flow_options(dag: Path, config: Path, **values: Any) -> Any:
    """Return the ``FlowOptions`` of a command line (paths absolute, ``--sbatch-args`` split like a shell)."""
    from flows.runtime import FlowOptions

    sbatch = tuple(shlex.split(values.pop("sbatch_args") or "")) if "sbatch_args" in values else ()
    return FlowOptions(str(dag.resolve()), str(config.resolve()), sbatch_args=sbatch, **values)


class RunLogFilter:
    """Keep Prefect's console for Prefect's own warnings; the flow's and steps' lines are in the live table."""

    def filter(self, record: Any) -> bool:
        """Drop the run loggers' records (shown by the live table)."""
        return not str(record.name).startswith(("prefect.flow_runs", "prefect.task_runs"))


TEMPORARY_SERVER_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
TEMPORARY_SERVER_START_S = 90
"""How long a flow waits for Prefect's temporary server to start (Prefect's own default, 20 s, is
exceeded on a loaded 2-CPU node: measured once here, right after a test run); the variable wins."""


class PrefectSettings:
    """The Prefect API URL to use: $PREFECT_API_URL, else the site's, else Prefect's own (or a temporary server).

    A temporary server gets `TEMPORARY_SERVER_START_S` to start unless
    $PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS says otherwise.

    A URL that does not answer is bad input (exit 2) before any step starts. ``foreground``: the flow
    runs in this process (``flow run``), which reports its own end, so it sends no heartbeats unless
    $PREFECT_FLOWS_HEARTBEAT_FREQUENCY asks for them: Prefect's heartbeat thread wakes once a second
    and its run waits for it at the end (0.5 s per flow run on average, up to 1 s). A deployment's run,
    started by a worker, keeps Prefect's heartbeats (they let an automation mark a vanished run Crashed).
    """

    def __init__(self, site: Any, *, foreground: bool = False) -> None:
        self.site = site
        self.foreground = foreground
        self._context: Any = None

    def __enter__(self) -> None:
        from prefect.settings import (
            PREFECT_API_URL,
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
            PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
            get_current_settings,
            temporary_settings,
        )

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
        updates: Dict[Any, Any] = {PREFECT_API_URL: url} if url else {}
        if not url and not os.environ.get(TEMPORARY_SERVER_TIMEOUT_ENV):
            updates[PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS] = TEMPORARY_SERVER_START_S
        asked = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")  # the second: its old name
        if self.foreground and not any(os.environ.get(name) for name in asked):
            updates[PREFECT_FLOWS_HEARTBEAT_FREQUENCY] = None
        self._context = temporary_settings(updates=updates) if updates else None
        if self._context is not None:
            self._context.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._context is not None:
            self._context.__exit__(*exc)


class ServerRequired(PrefectSettings):
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
