"""``lute-kernel db``: look at the run database, and mark rows invalid.

Owns the ``db`` sub-commands (``ls``, ``show``, ``invalidate``), their options and exit codes:
an input error (no database, unknown Task table or row, a row id out of range) and a database
that cannot be read (a directory, not SQLite, corrupt: the database is these commands' input)
print one ``error:`` line to stderr and exit 2, never a traceback. A RUNNING row is shown as
``LOST`` when its kernel, on this host, is gone, and as ``RUNNING (host X)`` when it ran elsewhere.
Must not query SQL itself (that is `lute_kernel.db`) nor lay out tables (`lute_kernel.cli.tables`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Dict, Optional

import typer

from lute_kernel.cli.common import reported_errors
from lute_kernel.errors import EXIT_BAD_INPUT, DatabaseError, InputError

ROW_ID_MAX = 2**63 - 1

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


@contextmanager
def _db_errors() -> Iterator[None]:
    """Like `reported_errors`, but an unreadable database is bad input here (exit 2)."""
    with reported_errors():
        try:
            yield
        except DatabaseError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None


def _checked_id(row_id: int) -> int:
    if not 1 <= row_id <= ROW_ID_MAX:
        raise InputError(f"row id {row_id} is out of range: ids run from 1 to {ROW_ID_MAX}")
    return row_id


def _shown(row: Mapping[str, Any], *, detail: bool = False) -> Dict[str, Any]:
    """Return the row with the status a reader should see (LOST, RUNNING (host X))."""
    from lute_kernel.db import LOST, display_status

    shown = dict(row)
    status = display_status(row)
    if status != row.get("result.task_status"):
        note = status
        if detail and status == LOST:
            note = f"LOST (recorded RUNNING; kernel pid {row.get('prov.pid')} on {row.get('prov.host')} is gone)"
        shown["result.task_status"] = note
    return shown


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

    with _db_errors():
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

    with _db_errors():
        if row_id is not None:
            _checked_id(row_id)
        directory = _work_dir(work_dir, config)
        if row_id is not None:
            table = row_detail_table(task, _shown(db.get_row(directory, task, row_id), detail=True))
        else:
            table = rows_table(task, [_shown(row) for row in db.list_rows(directory, task, limit)])
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

    with _db_errors():
        db.invalidate(_work_dir(work_dir, config), task, _checked_id(row_id))
    typer.echo(f"{task} row {row_id} marked invalid.")
