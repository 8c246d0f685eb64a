"""The HTML report of a work_dir (``lute-kernel report``) and the eLog's summary pages.

Owns the two entry points: `write_report` (every run of ``lute.db`` — Task, status, times, host,
image and digest, exit code —, a timeline, each run's summary and figures; one self-contained file,
``<work_dir>/report.html`` by default) and `write_summary_pages` (a run's figures, one page per
display name, at ``<summary dir>/<display_name>/report.html``: upstream LUTE's eLog layout). Both
read the database only through `lute_kernel.db` (read-only) and write only the files they are asked
for, whole (a temporary file, then a rename). Needs the ``plotly`` package (for its plotly.js).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from lute_kernel.db.connection import PathLike
from lute_kernel.figure_store import StoredFigure
from lute_kernel.figures import check_display_name

REPORT_FILE = "report.html"

__all__ = ["REPORT_FILE", "WrittenReport", "build_report", "write_report", "write_summary_pages"]


@dataclass(frozen=True)
class WrittenReport:
    """What `write_report` wrote: the file, and how many runs and figures it shows."""

    path: Path
    runs: int
    figures: int


def _write_whole(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is for others to read
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def build_report(work_dir: PathLike) -> str:
    """Return the report of ``work_dir``'s ``lute.db`` as one HTML page.

    Raises:
        InputError: There is no database, or plotly is not installed.
        DatabaseError: The database cannot be read.
    """
    return _build(work_dir)[0]


def _build(work_dir: PathLike) -> Tuple[str, int, int]:
    from lute_kernel.db import db_path
    from lute_kernel.flow_record import read_flow_records
    from lute_kernel.report.html import render_report
    from lute_kernel.report.runs import read_runs

    runs = read_runs(work_dir)
    flows = read_flow_records(Path(work_dir))
    page = render_report(str(Path(work_dir).resolve()), str(db_path(work_dir).resolve()), runs, flows=flows)
    return page, len(runs), sum(len(run.figures) for run in runs)


def write_report(work_dir: PathLike, out: Optional[PathLike] = None) -> WrittenReport:
    """Write the report of ``work_dir`` to ``out`` (default ``<work_dir>/report.html``).

    Raises:
        InputError: There is no database, or plotly is not installed.
        DatabaseError: The database cannot be read.
        OSError: The file cannot be written.
    """
    target = Path(out) if out is not None else Path(work_dir) / REPORT_FILE
    page, runs, figures = _build(work_dir)
    _write_whole(target, page)
    return WrittenReport(target, runs, figures)


def write_summary_pages(root: PathLike, figures: Sequence[StoredFigure]) -> List[Path]:
    """Write one eLog summary page per display name: ``<root>/<display_name>/report.html``.

    Raises:
        OSError: A page cannot be written.
        FigureError: A display name is not a plain relative path.
    """
    from lute_kernel.report.html import render_summary

    groups: Dict[str, List[StoredFigure]] = {}
    for figure in figures:
        groups.setdefault(check_display_name(figure.display_name), []).append(figure)
    written = []
    for display_name, group in groups.items():
        page = Path(root, *display_name.split("/"), REPORT_FILE)
        _write_whole(page, render_summary(display_name, group))
        written.append(page)
    return written
