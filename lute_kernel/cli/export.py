"""``db export``'s formats: rows as CSV or JSON text, for pandas, Excel and scripts.

Owns the layout: one record per row, every column (the union of all rows' columns, in the order
first seen), values as stored (NULL is an empty CSV cell and JSON null; BLOB text decoded as UTF-8).
Pure.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any, List

__all__ = ["export_text"]


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def export_text(rows: Sequence[Mapping[str, Any]], fmt: str) -> str:
    """Return ``rows`` as ``csv`` (a header line, then one line per row) or ``json`` (a list of objects)."""
    if fmt == "json":
        return json.dumps([{k: _plain(v) for k, v in row.items()} for row in rows], indent=1) + "\n"
    columns: List[str] = []
    for row in rows:
        columns.extend(name for name in row if name not in columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _plain(row.get(c)) for c in columns])
    return out.getvalue()
