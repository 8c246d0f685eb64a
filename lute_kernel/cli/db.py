"""``lute-kernel db``: look at the run database, and mark rows invalid.

Owns the ``db`` sub-commands (``ls``, ``show``, ``invalidate``), their options and exit codes:
an input error (no database, unknown Task table or row) prints one line to stderr and exits 2.
Must not query SQL itself (that is `lute_kernel.db`) nor lay out tables (`lute_kernel.cli.tables`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lute_kernel.cli.common import reported_errors
from lute_kernel.errors import InputError

# The DB layer, rich and the table layouts are imported inside the commands: `lute-kernel run`
# loads this module too, and must not pay for them before its Task starts.

db_app = typer.Typer(
    help="Look at the run database (<work_dir>/lute.db): Task tables, runs, provenance.",
    no_args_is_help=True,
)

WorkDirOption = Annotated[
    Optional[Path],
    typer.Option("--work-dir", "-w", help="Work directory holding lute.db."),
]
ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="Config file whose header names the work_dir."),
]


def _work_dir(work_dir: Optional[Path], config: Optional[Path]) -> Path:
    if work_dir is not None:
        return work_dir
    if config is None:
        raise InputError("give --work-dir DIR or --config CFG")
    from lute_kernel.config import load_config  # only needed with --config

    header = load_config(config).header()
    if not header.get("work_dir"):
        raise InputError(f"{config}: the header has no work_dir")
    return Path(header["work_dir"])


@db_app.command("ls")
def ls_command(work_dir: WorkDirOption = None, config: ConfigOption = None) -> None:
    """List the Task tables: rows, valid rows, last run."""
    from rich.console import Console

    from lute_kernel import db
    from lute_kernel.cli.tables import task_tables_table

    with reported_errors():
        summaries = db.list_tasks(_work_dir(work_dir, config))
    Console().print(task_tables_table(summaries))


@db_app.command("show")
def show_command(
    task: Annotated[str, typer.Argument(help="Task name (its table).")],
    row_id: Annotated[Optional[int], typer.Option("--id", help="Show this row, every column.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs to list.")] = 20,
    work_dir: WorkDirOption = None,
    config: ConfigOption = None,
) -> None:
    """List a Task's runs, newest first, or show one run with --id."""
    from rich.console import Console

    from lute_kernel import db
    from lute_kernel.cli.tables import row_detail_table, rows_table

    with reported_errors():
        directory = _work_dir(work_dir, config)
        if row_id is not None:
            table = row_detail_table(task, db.get_row(directory, task, row_id))
        else:
            table = rows_table(task, db.list_rows(directory, task, limit))
    Console().print(table)


@db_app.command("invalidate")
def invalidate_command(
    task: Annotated[str, typer.Argument(help="Task name (its table).")],
    row_id: Annotated[int, typer.Argument(help="Row id to mark invalid.")],
    work_dir: WorkDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Mark a run invalid, so later Tasks stop reading its values."""
    from lute_kernel import db

    with reported_errors():
        db.invalidate(_work_dir(work_dir, config), task, row_id)
    typer.echo(f"{task} row {row_id} marked invalid.")
