"""The top-level commands: run, rerun, explain, validate, report, submit; and the config/db/images/tasks groups."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Dict, List, Optional

import typer

from lute_kernel.cli.common import (
    ConfigPath,
    LauncherOption,
    RanksOption,
    RuntimeOption,
    SiteOption,
    reported_errors,
)
from lute_kernel.cli.completion import complete_task
from lute_kernel.cli.config_cmd import config_app
from lute_kernel.cli.db import db_app
from lute_kernel.cli.flow import flow_app
from lute_kernel.cli.images import images_app
from lute_kernel.cli.messages import print_error
from lute_kernel.cli.report_cmd import report
from lute_kernel.cli.serve_cmd import serve
from lute_kernel.cli.submit import submit
from lute_kernel.cli.tasks_cmd import tasks_app
from lute_kernel.errors import EXIT_BAD_INPUT, EXIT_OK

app = typer.Typer(
    help="Run LCLS analysis Tasks: validated on the host, run in their own environment, recorded in SQLite.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion; Task, image and section names complete
    pretty_exceptions_enable=False,
    # Plain help (click's formatter): rich's help panels cost ~0.2 s of imports per `--help`. Errors on a
    # terminal keep rich's formatting (lute_kernel.cli.common.show_click_error).
    rich_markup_mode=None,
)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(images_app, name="images")
app.add_typer(flow_app, name="flow")
app.add_typer(tasks_app, name="tasks")
app.command("submit")(submit)
app.command("report")(report)
app.command("serve")(serve)

TaskArgument = Annotated[
    str,
    typer.Argument(help="Task name (class name, or an upstream alias such as Tester).", autocompletion=complete_task),
]


SkipDoneOption = Annotated[
    bool,
    typer.Option(
        "--skip-done",
        help="Do not run TASK if a valid COMPLETED row of this run has the same parameters, image digest and"
        " kernel version: say which row it is and exit 0.",
    ),
]
ForceOption = Annotated[bool, typer.Option("--force", help="Run even when --skip-done finds the run done.")]
ProfileOption = Annotated[
    bool,
    typer.Option(
        "--profile", help="At the end, print where the wall time went (start-up, validation, container, Task…)."
    ),
]


TasksArgument = Annotated[
    List[str],
    typer.Argument(
        help="Task name (class name, or an upstream alias such as Tester); several run one after the other,"
        " stopping at the first that does not complete.",
        autocompletion=complete_task,
    ),
]


@app.command()
def run(
    task: TasksArgument,
    config: ConfigPath,
    site: SiteOption = None,
    runtime: RuntimeOption = None,
    launcher: LauncherOption = None,
    ranks: RanksOption = None,
    skip_done: SkipDoneOption = False,
    force: ForceOption = False,
    profile: ProfileOption = False,
) -> None:
    """Validate TASK's section of the config, run it, show its log and progress, and record it in the DB.

    Several Tasks (``run TestWriteOutput TestReadOutput -c cfg.yaml``) run one after the other in one
    process, each prepared after the one before it is recorded; the first that fails stops the rest.
    """
    from lute_kernel.cli.run_cmd import run_all_and_report

    raise typer.Exit(
        run_all_and_report(
            task,
            config,
            skip_done=skip_done and not force,
            profile=profile,
            site=site,
            runtime=runtime,
            launcher=launcher,
            ranks=ranks,
        )
    )


def _run_and_report(task: str, config: Path, **options: Any) -> None:
    """Run TASK as ``lute-kernel run`` does (``lute_kernel.cli.run_cmd``) and exit with its code."""
    from lute_kernel.cli.run_cmd import run_and_report

    raise typer.Exit(run_and_report(task, config, **options))


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
        print_error(f"{task} row {row_id} was recorded without its config path; run it with `run`")
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
    for checked in reports:
        mark = "ok " if checked.ok else "ERR"
        typer.echo(f"{mark} {checked.section}" + ("" if checked.ok else f": {checked.message}"))
    bad = [r for r in reports if not r.ok]
    typer.echo(f"{len(reports) - len(bad)} valid, {len(bad)} invalid")
    raise typer.Exit(EXIT_BAD_INPUT if bad else EXIT_OK)


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
