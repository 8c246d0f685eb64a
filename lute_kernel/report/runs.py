"""What the report says about each run: one `RunEntry` per row of every Task table.

Owns reading a work_dir's runs for the report (through `lute_kernel.db.read_table`, read-only) and
their figures (through `lute_kernel.figure_store`), and the few derived values a reader wants: the
status to show (LOST, ``RUNNING (host X)``), the duration, the parameters apart from the rest. Must
not render anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Optional

from lute_kernel.db.connection import PathLike
from lute_kernel.db.layout import RESERVED_COLUMNS, RESERVED_PREFIXES
from lute_kernel.figure_store import StoredFigure, load_figures

__all__ = ["RunEntry", "entry_of", "read_runs"]


@dataclass
class RunEntry:
    """One run, as the report shows it."""

    task: str
    row_id: int
    status: str
    recorded_status: str
    valid: bool
    start: Optional[str]
    end: Optional[str]
    seconds: Optional[float]
    host: str
    runtime: str
    launcher: str
    image: str
    image_sha256: str
    exit_code: Optional[int]
    kernel_version: str
    experiment: str
    run: str
    ranks: Optional[int]
    config: str
    summary: str
    payload: str
    parameters: Dict[str, Any] = field(default_factory=dict)
    figures: List[StoredFigure] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        """The HTML id of the run's section."""
        return f"run-{self.task}-{self.row_id}"


def _parse(moment: Any) -> Optional[datetime]:
    if not isinstance(moment, str) or not moment:
        return None
    try:
        return datetime.fromisoformat(moment)
    except ValueError:
        return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _payload(value: Any) -> str:
    text = _text(value)
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return json.dumps(parsed, indent=1) if isinstance(parsed, (dict, list)) else text


def entry_of(task: str, row: Dict[str, Any], work_dir: Optional[PathLike] = None) -> RunEntry:
    """Return the report's view of one Task row (with its figures when ``work_dir`` is given)."""
    from lute_kernel.db.liveness import display_status

    start, end = _parse(row.get("prov.start")), _parse(row.get("prov.end"))
    seconds = (end - start).total_seconds() if start and end else None
    exit_code = row.get("prov.exit_code")
    ranks = row.get("prov.ranks")
    entry = RunEntry(
        task=task,
        row_id=int(row.get("id") or 0),
        status=display_status(row) or "?",
        recorded_status=_text(row.get("result.task_status")),
        valid=row.get("valid_flag") == 1,
        start=row.get("prov.start") if start else None,
        end=row.get("prov.end") if end else None,
        seconds=seconds,
        host=_text(row.get("prov.host")),
        runtime=_text(row.get("prov.runtime")),
        launcher=_text(row.get("prov.launcher")),
        image=_text(row.get("prov.image")),
        image_sha256=_text(row.get("prov.image_sha256")),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        kernel_version=_text(row.get("prov.kernel_version")),
        experiment=_text(row.get("gen_cfg.experiment")),
        run=_text(row.get("gen_cfg.run")),
        ranks=ranks if isinstance(ranks, int) else None,
        config=_text(row.get("prov.config")),
        summary=_text(row.get("result.summary")),
        payload=_payload(row.get("result.payload")),
        parameters={
            name: value
            for name, value in row.items()
            if name.lower() not in RESERVED_COLUMNS
            and not name.lower().startswith((*RESERVED_PREFIXES, "gen_cfg.", "exec_cfg."))
        },
    )
    if work_dir is not None:
        entry.figures = load_figures(work_dir, task, entry.row_id, row.get("prov.start"))
    return entry


def read_runs(work_dir: PathLike) -> List[RunEntry]:
    """Return every run of ``work_dir``'s ``lute.db``, newest start first.

    Raises:
        InputError: There is no database.
        DatabaseError: It cannot be read.
    """
    from lute_kernel.db import read_table, table_names

    entries = [entry_of(task, row, work_dir) for task in table_names(work_dir) for row in read_table(work_dir, task)]
    entries.sort(key=lambda e: (e.start or "", e.task, e.row_id), reverse=True)
    return entries
