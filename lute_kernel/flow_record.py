"""The record a flow run leaves in its work_dir: its steps, their DAG edges and how each ended.

Owns the file's place and format — ``<work_dir>/.lute/flows/<flow run>/flow.json``, version 1:
``{"v": 1, "name", "dag", "backend", "started", "ended", "status", "steps": [{"id", "label",
"task", "state", "upstream", "rule", "row", "seconds", "attempts", "reason"}]}`` — written whole
by the flow at its end (``flows.step_loop``), read by the report (``lute_kernel.report``), which
draws each flow's DAG. lute.db stays the record of the runs; this file only says how a flow's runs
hang together, so a missing or damaged one costs the report its DAG, nothing else.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

FLOWS_DIR = Path(".lute") / "flows"
"""Under a work_dir: one folder per flow run (its derived sweep configs, its record)."""
RECORD_NAME = "flow.json"
RECORD_VERSION = 1
MAX_RECORD_BYTES = 8 << 20
"""A bigger file is not a record this kernel wrote: skipped."""
MAX_FLOWS_SHOWN = 50
"""The report draws the newest flow runs only."""


@dataclass(frozen=True)
class FlowStep:
    """One step of a recorded flow run."""

    id: int
    label: str
    task: str
    state: str
    upstream: List[int] = field(default_factory=list)
    rule: str = ""
    row: Optional[int] = None
    seconds: Optional[float] = None
    attempts: int = 0
    reason: str = ""


@dataclass(frozen=True)
class FlowRecord:
    """A recorded flow run."""

    name: str
    dag: str
    backend: str
    started: str
    ended: str
    status: str
    steps: List[FlowStep]
    folder: str = ""


def write_flow_record(folder: Union[str, Path], record: Dict[str, Any]) -> Path:
    """Write ``record`` (the format above, ``v`` added) as ``folder/flow.json``, whole; return the path."""
    path = Path(folder) / RECORD_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".flow.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"v": RECORD_VERSION, **record}, out, indent=1, default=str)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _step(raw: Any) -> Optional[FlowStep]:
    if not isinstance(raw, dict) or _int(raw.get("id")) is None:
        return None
    upstream = raw.get("upstream")
    seconds = raw.get("seconds")
    return FlowStep(
        id=int(raw["id"]),
        label=_text(raw.get("label")) or f"step {raw['id']}",
        task=_text(raw.get("task")),
        state=_text(raw.get("state")) or "UNKNOWN",
        upstream=[u for u in upstream if _int(u) is not None] if isinstance(upstream, list) else [],
        rule=_text(raw.get("rule")),
        row=_int(raw.get("row")),
        seconds=float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else None,
        attempts=_int(raw.get("attempts")) or 0,
        reason=_text(raw.get("reason")),
    )


def parse_flow_record(data: Any, folder: str = "") -> Optional[FlowRecord]:
    """Return the record in parsed JSON ``data``, or None when it is not one (another version, wrong shape)."""
    if not isinstance(data, dict) or data.get("v") != RECORD_VERSION or not isinstance(data.get("steps"), list):
        return None
    steps = [step for step in (_step(raw) for raw in data["steps"]) if step is not None]
    known = {step.id for step in steps}
    steps = [FlowStep(**{**step.__dict__, "upstream": [u for u in step.upstream if u in known]}) for step in steps]
    return FlowRecord(
        name=_text(data.get("name")) or "flow",
        dag=_text(data.get("dag")),
        backend=_text(data.get("backend")),
        started=_text(data.get("started")),
        ended=_text(data.get("ended")),
        status=_text(data.get("status")) or "UNKNOWN",
        steps=steps,
        folder=folder,
    )


def read_flow_records(work_dir: Union[str, Path], limit: int = MAX_FLOWS_SHOWN) -> List[FlowRecord]:
    """Return the flow runs recorded under ``work_dir``, newest first (at most ``limit``), skipping non-records."""
    root = Path(work_dir) / FLOWS_DIR
    try:
        folders = [entry for entry in os.scandir(root) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    records: List[FlowRecord] = []
    for entry in folders:
        path = Path(entry.path) / RECORD_NAME
        try:
            if path.stat().st_size > MAX_RECORD_BYTES:
                continue
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        record = parse_flow_record(data, entry.name)
        if record is not None:
            records.append(record)
    records.sort(key=lambda r: (r.started, r.folder), reverse=True)
    return records[:limit]
