"""``lute-kernel db``: look at the run database, and mark rows invalid.

Owns the ``db`` sub-commands (``ls``, ``show``, ``view`` — the terminal viewer of
`lute_kernel.cli.view` —, ``export``, ``invalidate``), their options and exit codes:
an input error (no database, unknown Task table or row, a row id out of range) and a database
that cannot be read (a directory, not SQLite, corrupt: the database is these commands' input)
print one ``error:`` line to stderr and exit 2, never a traceback. A RUNNING row is shown as
``LOST`` when its kernel, on this host, is gone, and as ``RUNNING (host X)`` when it ran elsewhere.
Must not query SQL itself (that is `lute_kernel.db`) nor lay out tables (`lute_kernel.cli.tables`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Dict, Optional

import typer

from lute_kernel.cli.common import reported_errors
from lute_kernel.cli.completion import complete_task
from lute_kernel.cli.messages import print_error
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
def db_errors() -> Iterator[None]:
    """Like `reported_errors`, but an unreadable database is bad input here (exit 2); for ``report`` too."""
    with reported_errors():
        try:
            yield
        except DatabaseError as err:
            print_error(str(err))
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


def work_dir_of(work_dir: Optional[Path], config: Optional[Path]) -> Path:
    """Return the work_dir a ``db``/``report`` command names: ``--work-dir``, or the header of ``--config``."""
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

    with db_errors():
        summaries = db.list_tasks(work_dir_of(work_dir, config))
    Console().print(task_tables_table(summaries))


@db_app.command("show")
def show_command(
    task: Annotated[str, typer.Argument(help="Task name (its table).", autocompletion=complete_task)],
    row: Annotated[Optional[int], typer.Argument(help="Show this row, every column (same as --id).")] = None,
    row_id: Annotated[Optional[int], typer.Option("--id", help="Show this row, every column.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs to list.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one row with ROW/--id, else the list).")] = False,
    work_dir: WorkDirOption = None,
    config: ConfigOption = None,
) -> None:
    """List a Task's runs, newest first, or show one run, every column wrapped, never cut (ROW or --id)."""
    from rich.console import Console

    from lute_kernel import db
    from lute_kernel.cli.tables import row_detail_table, rows_table

    wanted = row if row is not None else row_id
    with db_errors():
        if wanted is not None:
            _checked_id(wanted)
        directory = work_dir_of(work_dir, config)
        if wanted is not None:
            shown: Any = _shown(db.get_row(directory, task, wanted), detail=True)
        else:
            shown = [_shown(found) for found in db.list_rows(directory, task, limit)]
    if as_json:
        typer.echo(json.dumps(shown, indent=2, default=_json_value))
        return
    table = row_detail_table(task, shown) if wanted is not None else rows_table(task, shown)
    Console(width=None if sys.stdout.isatty() else 120).print(table)  # piped: wrapped at 120, never cut


def _json_value(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@db_app.command("export")
def export_command(
    task: Annotated[str, typer.Argument(help="Task name (its table).", autocompletion=complete_task)],
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or json.")] = "csv",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here (default: stdout).")] = None,
    work_dir: WorkDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Write every run of TASK (oldest first, with its gen_cfg.* and exec_cfg.* values) as CSV or JSON.

    For pandas: ``pd.read_csv(...)`` or ``pd.read_json(..., orient="records")``.
    """
    from lute_kernel import db
    from lute_kernel.cli.export import export_text

    with db_errors():
        if fmt not in ("csv", "json"):
            raise InputError(f"unknown --format {fmt!r}: use csv or json")
        rows = db.read_table(work_dir_of(work_dir, config), task, newest_first=False)
        text = export_text(rows, fmt)
        if output is None:
            sys.stdout.write(text)
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None
    typer.echo(f"{task}: {len(rows)} rows written to {output}", err=True)


@db_app.command("view")
def view_command(
    work_dir: WorkDirOption = None,
    config: ConfigOption = None,
    poll: Annotated[
        float, typer.Option("--poll", min=0, help="Seconds between looks for changes (0: only on 'r').")
    ] = 1.0,
) -> None:
    """Browse the database in the terminal, read-only: a tab per table, a row's every column, a filter."""
    from lute_kernel.cli.view import DbView

    with db_errors():
        viewer = DbView(work_dir_of(work_dir, config), poll_seconds=poll)
    viewer.run()


@db_app.command("invalidate")
def invalidate_command(
    task: Annotated[str, typer.Argument(help="Task name (its table).")],
    row_id: Annotated[int, typer.Argument(help="Row id to mark invalid.")],
    work_dir: WorkDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Mark a run invalid, so later Tasks stop reading its values."""
    from lute_kernel import db

    with db_errors():
        db.invalidate(work_dir_of(work_dir, config), task, _checked_id(row_id))
    typer.echo(f"{task} row {row_id} marked invalid.")
