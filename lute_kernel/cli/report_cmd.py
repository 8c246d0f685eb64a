"""``lute-kernel report``: write the HTML report of a work_dir's runs.

Owns the command's options and messages; the page is `lute_kernel.report`'s. A missing or unreadable
database is bad input (exit 2, one ``error:`` line), as for the ``db`` commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lute_kernel.cli.db import ConfigOption, WorkDirOption, db_errors, work_dir_of

OutputOption = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", help="Where to write the page (default: <work_dir>/report.html)."),
]


def report(work_dir: WorkDirOption = None, config: ConfigOption = None, output: OutputOption = None) -> None:
    """Write one self-contained HTML page of every run: timeline, status, provenance, summaries, figures."""
    from lute_kernel.report import write_report

    with db_errors():
        try:
            written = write_report(work_dir_of(work_dir, config), output)
        except OSError as exc:
            from lute_kernel.errors import InputError

            raise InputError(f"cannot write the report: {exc}") from None
    size = written.path.stat().st_size / 1e6
    typer.echo(f"report: {written.path} ({written.runs} runs, {written.figures} figures, {size:.1f} MB)")
