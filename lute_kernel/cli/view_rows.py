"""What the DB viewer shows of rows: the filter, the list columns, the cells and the detail of a row.

Owns the viewer's pure parts, so they are tested without a terminal: parsing a filter
(``status:FAILED run:12 peaks`` — every term must hold; ``status:`` and ``run:`` compare whole
values, case-insensitively; other words are looked for in every value), choosing a table's list
columns, a cell's text and colour (statuses as in the report), and the detail of one row (every
column; JSON text laid out). Must not read the database or import Textual.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

from rich.table import Table
from rich.text import Text

from lute_kernel.db.layout import RESERVED_COLUMNS, RESERVED_PREFIXES

STATUS_STYLES = {
    "COMPLETED": "green",
    "FAILED": "bold red",
    "TIMEDOUT": "dark_orange",
    "CANCELLED": "magenta",
    "RUNNING": "cyan",
    "LOST": "bold yellow",
}
MAX_CELL = 48
TASK_COLUMNS = ("id", "timestamp", "result.task_status", "valid_flag", "gen_cfg.run", "result.summary")
HEADINGS = {"result.task_status": "status", "valid_flag": "valid", "gen_cfg.run": "run", "result.summary": "summary"}
PARAMETERS_SHOWN = 3

__all__ = [
    "RowFilter",
    "cell",
    "detail_table",
    "list_columns",
    "parse_filter",
    "status_style",
]


@dataclass(frozen=True)
class RowFilter:
    """A parsed filter: statuses and runs wanted (any of each), and words every row must contain."""

    statuses: Tuple[str, ...] = ()
    runs: Tuple[str, ...] = ()
    words: Tuple[str, ...] = field(default_factory=tuple)

    def matches(self, row: Mapping[str, Any]) -> bool:
        """Return whether ``row`` passes (a shared-table row has no status or run: only words apply)."""
        if self.statuses and "result.task_status" in row:
            status = str(row.get("result.task_status") or "").upper()
            if not any(status == wanted or status.startswith(wanted + " ") for wanted in self.statuses):
                return False
        if self.runs and "gen_cfg.run" in row and str(row.get("gen_cfg.run")).lower() not in self.runs:
            return False
        if self.words:
            text = " ".join(str(value) for value in row.values() if value is not None).lower()
            return all(word in text for word in self.words)
        return True


def parse_filter(text: str) -> RowFilter:
    """Return the filter a user typed, e.g. ``"status:failed run:12 FindPeaks"``."""
    statuses: List[str] = []
    runs: List[str] = []
    words: List[str] = []
    for term in text.split():
        key, sep, value = term.partition(":")
        if sep and value and key.lower() == "status":
            statuses.append(value.upper())
        elif sep and value and key.lower() == "run":
            runs.append(value.lower())
        else:
            words.append(term.lower())
    return RowFilter(tuple(statuses), tuple(runs), tuple(words))


def _is_parameter(column: str) -> bool:
    lowered = column.lower()
    return lowered not in RESERVED_COLUMNS and not lowered.startswith((*RESERVED_PREFIXES, "gen_cfg.", "exec_cfg."))


def list_columns(table: str, rows: Sequence[Mapping[str, Any]]) -> List[Tuple[str, str]]:
    """Return ``(column, heading)`` of a table's list columns.

    Task tables: the fixed ones and the first few parameters; ``gen_cfg``/``exec_cfg``: every column.
    """
    names: List[str] = []
    for row in rows:
        names.extend(name for name in row if name not in names)
    if table in ("gen_cfg", "exec_cfg"):
        return [(name, name) for name in names]
    params = [name for name in names if _is_parameter(name)][:PARAMETERS_SHOWN]
    return [(name, HEADINGS.get(name, name)) for name in (*TASK_COLUMNS, *params)]


def status_style(status: Any) -> str:
    """Return the colour of a status (``RUNNING (host X)`` is RUNNING's)."""
    return STATUS_STYLES.get(str(status or "").split(" ")[0], "")


def cell(column: str, value: Any) -> Text:
    """Return a list cell: ``-`` for NULL, statuses coloured, valid as yes/no, long text cut."""
    if value is None:
        return Text("-", style="dim")
    if column == "result.task_status":
        return Text(str(value), style=status_style(value))
    if column == "valid_flag":
        return Text("yes", style="green") if value == 1 else Text("no", style="red")
    text = " ".join(str(value).split())
    if len(text) > MAX_CELL:
        text = text[: MAX_CELL - 1] + "…"
    return Text(text)


def _laid_out(value: Any) -> Text:
    if value is None:
        return Text("NULL", style="dim")
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if text[:1] in "[{":
        try:
            text = json.dumps(json.loads(text), indent=2)
        except ValueError:
            pass
    return Text(text)


def detail_table(title: str, row: Mapping[str, Any]) -> Table:
    """Return every column of one row, two columns (name, value), values wrapped, never cut."""
    table = Table(title=Text(title, style="bold"), show_header=False, expand=True, box=None, padding=(0, 1))
    table.add_column("column", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold", ratio=1)
    for name, value in row.items():
        shown = cell(name, value) if name in ("result.task_status", "valid_flag") else _laid_out(value)
        table.add_row(Text(name), shown)
    return table


def row_key(row: Mapping[str, Any]) -> str:
    """Return the key a row keeps across refreshes: its id."""
    return str(row.get("id"))


def indexed(rows: Sequence[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Return the rows by `row_key`."""
    return {row_key(row): row for row in rows}
