"""The top-level commands: run, explain, validate, tasks; and the ``config``/``db`` groups."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, Dict, Optional

import typer

from lute_kernel.cli.common import (
    ConfigPath,
    LauncherOption,
    RanksOption,
    RuntimeOption,
    SiteOption,
    reported_errors,
)
from lute_kernel.cli.config_cmd import config_app
from lute_kernel.cli.db import db_app
from lute_kernel.cli.flow import flow_app
from lute_kernel.cli.images import images_app
from lute_kernel.cli.submit import submit
from lute_kernel.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_TASK_FAILED

app = typer.Typer(
    help="Run LCLS analysis Tasks: validated on the host, run in their own environment, recorded in SQLite.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(images_app, name="images")
app.add_typer(flow_app, name="flow")
app.command("submit")(submit)

TaskArgument = Annotated[str, typer.Argument(help="Task name (class name, or an upstream alias such as Tester).")]


def _print_event(event: Any) -> None:
    rank = f"[{event.rank}] " if event.rank else ""
    if event.kind == "log":
        line = f"{rank}{event.level:<7} {event.text}"
    elif event.kind == "progress":
        line = f"{rank}progress {event.text}"
    elif event.kind == "status":
        line = f"lute-kernel: {event.text}"
    else:
        line = f"{rank}{event.kind}: {event.text}"
    print(line, file=sys.stderr if event.kind == "stderr" else sys.stdout, flush=True)


@app.command()
def run(
    task: TaskArgument,
    config: ConfigPath,
    site: SiteOption = None,
    runtime: RuntimeOption = None,
    launcher: LauncherOption = None,
    ranks: RanksOption = None,
) -> None:
    """Validate TASK's section of the config, run it, stream its log, and record it in the DB."""
    _run_and_report(task, config, site=site, runtime=runtime, launcher=launcher, ranks=ranks)


FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
"""Signals that cancel the run (forwarded to the Task): Ctrl-C, scancel/kill, a closed terminal, Ctrl-\\."""


def _run_and_report(task: str, config: Path, **options: Any) -> None:
    """Prepare, run with live output and signal forwarding, print the status line, exit 0/1/2."""
    from lute_kernel.api import prepare, run_prepared
    from lute_kernel.cancel import CancelToken

    cancel = CancelToken()
    # Installed before anything slow: a signal during start-up cancels cleanly (nothing is launched
    # yet, so preparing is simply not continued), instead of a traceback from wherever it landed.
    previous = {s: signal.signal(s, lambda signum, _frame: cancel.cancel(signum)) for s in FORWARDED_SIGNALS}
    try:
        with reported_errors():
            prepared = prepare(task, config, **options)
        if cancel.cancelled:
            typer.echo(f"lute-kernel: cancelled by {signal.Signals(cancel.signum or 2).name} before launch", err=True)
            raise typer.Exit(EXIT_TASK_FAILED)
        with reported_errors():
            outcome = run_prepared(prepared, on_event=_print_event, cancel=cancel)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        cancel.close()
    from lute_kernel.summaries import summary_text

    summary = f" — {summary_text(outcome.summary)}" if outcome.summary else ""
    where = f"row {outcome.row_id} in {outcome.db_path}" if outcome.row_id is not None else "NOT RECORDED"
    typer.echo(f"{outcome.task_name}: {outcome.status.value} in {outcome.seconds:.2f} s ({where}){summary}")
    if outcome.not_recorded:
        typer.echo(f"error: not recorded in {outcome.db_path}: {outcome.not_recorded}", err=True)
        raise typer.Exit(EXIT_TASK_FAILED)
    raise typer.Exit(EXIT_OK if outcome.ok else EXIT_TASK_FAILED)


@app.command()
def rerun(
    task: TaskArgument,
    row_id: Annotated[int, typer.Argument(help="The row (id) of TASK's table to run again.")],
    work_dir: Annotated[Path, typer.Option("--work-dir", "-w", help="Work directory holding lute.db.")],
) -> None:
    """Run a recorded row again: same config file, site, runtime, launcher and ranks (a new row)."""
    from lute_kernel import db

    with reported_errors():
        row = db.get_row(work_dir, task, row_id)
    if not row.get("prov.config"):
        typer.echo(f"error: {task} row {row_id} was recorded without its config path; run it with `run`", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    typer.echo(f"lute-kernel: running {task} row {row_id} again from {row['prov.config']}")
    _run_and_report(
        task,
        Path(row["prov.config"]),
        site=row.get("prov.site") or None,
        runtime=row.get("prov.runtime") or None,
        launcher=row.get("prov.launcher") or None,
        ranks=row.get("prov.ranks") or None,
    )


@app.command()
def explain(
    task: TaskArgument,
    config: ConfigPath,
    site: SiteOption = None,
    runtime: RuntimeOption = None,
    launcher: LauncherOption = None,
    ranks: RanksOption = None,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show TASK's validated parameters and the exact argv/env that would run. Runs nothing."""
    from lute_kernel.api import explain as explain_run
    from lute_kernel.api import prepare

    with reported_errors():
        info = explain_run(prepare(task, config, site=site, runtime=runtime, launcher=launcher, ranks=ranks))
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    _print_explanation(info)


def _print_explanation(info: Dict[str, Any]) -> None:
    typer.echo(f"Task      {info['task']} ({info['kind']}, image {info['image']})")
    typer.echo(f"runtime   {info['runtime']}   launcher {info['launcher']}   cwd {info['cwd']}")
    typer.echo("parameters:")
    typer.echo("  " + json.dumps(info["parameters"], indent=2).replace("\n", "\n  "))
    how = " (local fast start: forked from the kernel, same effect as exec'ing it)" if info["start"] == "fork" else ""
    typer.echo(f"argv{how}:")
    typer.echo("  " + json.dumps(info["argv"]))
    typer.echo("env:")
    for key, value in info["env"].items():
        typer.echo(f"  {key}={value}")
    for path, text in info.get("files", {}).items():
        typer.echo(f"file {path} (written before launch):\n  " + text.rstrip("\n").replace("\n", "\n  "))


@app.command()
def validate(config: ConfigPath, site: SiteOption = None) -> None:
    """Validate the header (the site's defaults filled in) and every Task section (unknown Tasks are reported)."""
    import os

    from lute_kernel.config import load_config
    from lute_kernel.registry import discover
    from lute_kernel.sites import load_site
    from lute_kernel.validation import validate_file

    env = dict(os.environ)  # the run's host environment, as `run` sees it: $EXPERIMENT, $RUN_NUM
    with reported_errors():
        reports = validate_file(load_config(config, env=env), discover(), site=load_site(site), env=env)
    for report in reports:
        mark = "ok " if report.ok else "ERR"
        typer.echo(f"{mark} {report.section}" + ("" if report.ok else f": {report.message}"))
    bad = [r for r in reports if not r.ok]
    typer.echo(f"{len(reports) - len(bad)} valid, {len(bad)} invalid")
    raise typer.Exit(EXIT_BAD_INPUT if bad else EXIT_OK)


@app.command("tasks")
def list_tasks(
    show_failures: bool = typer.Option(True, help="Also list Task modules that failed to load."),
    site: SiteOption = None,
) -> None:
    """List the registered Tasks: name, image (site-only images marked), MPI and GPU needs, kind, aliases."""
    from rich.console import Console
    from rich.table import Table

    from lute_kernel.cli.task_table import image_notes, task_rows
    from lute_kernel.images.paths import default_recipes_dir
    from lute_kernel.images.recipes import recipe_names
    from lute_kernel.registry import discover
    from lute_kernel.sites import load_site

    registry = discover()
    with reported_errors():
        recipes = default_recipes_dir(load_site(site))
    known = tuple(recipe_names(recipes)) if recipes.is_dir() else None
    table = Table("Task", "image", "MPI", "GPU", "kind", "aliases", "description")
    for row in task_rows(registry, image_notes(recipes if known is not None else None), known):
        table.add_row(row.name, row.image, row.mpi, row.gpus, row.kind, row.aliases, row.description)
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(table)
    if show_failures and registry.failures:
        for failure in registry.failures:
            console.print(f"[red]failed to load[/red] {failure.source}: {failure.error}")


def version_callback(value: Optional[bool]) -> None:
    """Print the version and exit."""
    if value:
        from lute_kernel import __version__

        typer.echo(f"lute-kernel {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None,
        "--version",
        callback=version_callback,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Run LCLS analysis Tasks: validated on the host, run in their own environment, recorded in SQLite."""
