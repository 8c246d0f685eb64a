"""Keeping a run's figures next to its database: ``<work_dir>/figures/<Task>/<row id>/``.

Owns the folder layout and its index: each figure is ``<display_name>/<name>.json`` (plotly's JSON,
arrays as lists, NaN and infinities as null, which JSON has no words for) under the row's folder, and
``index.json`` there lists them with the run's start time, so a figure folder left by an earlier
``lute.db`` of the same work_dir is never shown with a new row of the same id. What a worker sent is
checked again here (names become paths). Writes each file whole (a temporary file, then a rename),
the index last. Host side only; must not open the database (the row records nothing of this: the
row id and the folder are the link).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from lute_kernel.figures import MAX_FIGURES, FigureError, check_display_name, check_figure_name

FIGURES_DIR = "figures"
INDEX_FILE = "index.json"
MAX_DEPTH = 64
"""Deepest nesting a stored figure may have (plotly's own figures stay within ~6)."""

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["FIGURES_DIR", "INDEX_FILE", "StoredFigure", "json_ready", "load_figures", "row_folder", "store_figures"]


@dataclass(frozen=True)
class StoredFigure:
    """One figure of a run, as stored.

    Attributes:
        display_name: Where it is shown (``"scans/my_motor_scan"``).
        name: Its name within the display name.
        path: Its JSON file.
        spec: The plotly figure (``{"data": [...], "layout": {...}}``).
    """

    display_name: str
    name: str
    path: Path
    spec: Dict[str, Any]


def row_folder(work_dir: PathLike, task_name: str, row_id: int) -> Path:
    """Return the folder of one row's figures: ``<work_dir>/figures/<Task>/<row id>``."""
    return Path(work_dir) / FIGURES_DIR / check_figure_name(task_name) / str(int(row_id))


def json_ready(value: Any, depth: int = 0) -> Any:
    """Return ``value`` as strict JSON data: arrays and tuples as lists, NaN/inf as None, keys as str.

    Raises:
        FigureError: Nested deeper than `MAX_DEPTH`.
    """
    if depth > MAX_DEPTH:
        raise FigureError(f"a figure is nested more than {MAX_DEPTH} levels deep")
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_ready(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v, depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def _entries(figures: Any) -> List[Dict[str, Any]]:
    """Return the worker's ``figures`` list, checked: names, the figure dict, the count."""
    if not isinstance(figures, Sequence) or isinstance(figures, (str, bytes)):
        raise FigureError(f"'figures' must be a list, not {type(figures).__name__}")
    if len(figures) > MAX_FIGURES:
        raise FigureError(f"{len(figures)} figures; at most {MAX_FIGURES} are kept per run")
    checked, seen = [], set()
    for entry in figures:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("figure"), Mapping):
            raise FigureError("each figure must be {'display_name', 'name', 'figure': {...}}")
        display_name = check_display_name(entry.get("display_name"))
        name = check_figure_name(entry.get("name"))
        if (display_name, name) in seen:
            raise FigureError(f"figure {name!r} of {display_name!r} is sent twice")
        seen.add((display_name, name))
        spec = entry["figure"]
        checked.append({"display_name": display_name, "name": name, "figure": json_ready(spec)})
    return checked


def _write_whole(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def store_figures(work_dir: PathLike, task_name: str, row_id: int, start: str, figures: Any) -> List[StoredFigure]:
    """Write a run's figures and their index; return what was stored.

    Args:
        work_dir: The run's work_dir.
        task_name: The Task (its table).
        row_id: The run's row.
        start: The run's ``prov.start`` as recorded (ISO 8601), kept in the index.
        figures: The result message's ``figures`` list.

    Raises:
        FigureError: The list, a name or a figure is not usable (nothing is written then).
        OSError: A file cannot be written.
    """
    entries = _entries(figures)
    folder = row_folder(work_dir, task_name, row_id)
    stored: List[StoredFigure] = []
    index: List[Dict[str, str]] = []
    for entry in entries:
        relative = Path(*entry["display_name"].split("/"), f"{entry['name']}.json")
        path = folder / relative
        _write_whole(path, json.dumps(entry["figure"], allow_nan=False, separators=(",", ":")))
        stored.append(StoredFigure(entry["display_name"], entry["name"], path, entry["figure"]))
        index.append({"display_name": entry["display_name"], "name": entry["name"], "file": relative.as_posix()})
    record = {"task": task_name, "row_id": int(row_id), "start": start, "figures": index}
    _write_whole(folder / INDEX_FILE, json.dumps(record, indent=1))
    return stored


def load_figures(work_dir: PathLike, task_name: str, row_id: int, start: Optional[str]) -> List[StoredFigure]:
    """Return the stored figures of one row, or ``[]`` (none, unreadable, or left by another run).

    Args:
        work_dir: The work_dir holding ``lute.db``.
        task_name: The Task (its table).
        row_id: The row.
        start: The row's ``prov.start``; an index recording another start belongs to another run.
    """
    try:
        folder = row_folder(work_dir, task_name, row_id)
        record = json.loads((folder / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, FigureError):
        return []
    if not isinstance(record, dict) or record.get("start") != start or not isinstance(record.get("figures"), list):
        return []
    found: List[StoredFigure] = []
    for item in record["figures"][:MAX_FIGURES]:
        try:
            display_name = check_display_name(item.get("display_name"))
            name = check_figure_name(item.get("name"))
            path = folder / Path(*display_name.split("/"), f"{name}.json")
            spec = json.loads(path.read_text(encoding="utf-8"))
        except (AttributeError, OSError, ValueError):  # FigureError is a ValueError
            continue
        if isinstance(spec, dict):
            found.append(StoredFigure(display_name, name, path, spec))
    return found
