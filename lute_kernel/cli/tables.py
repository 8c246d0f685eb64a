"""Rich tables for the ``lute-kernel db`` viewer.

Owns how database rows and summaries look in a terminal. Pure: builds `rich.table.Table` objects
from plain data and must not read the database, print, or exit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, List

from rich.table import Table
from rich.text import Text

from lute_kernel.db.layout import RESERVED_COLUMNS
from lute_kernel.db.queries import TaskTableSummary

MAX_CELL = 60
"""Cells longer than this are cut in list views (the ``--id`` view shows everything)."""

__all__ = ["parameter_columns", "row_detail_table", "rows_table", "task_tables_table"]


def _cell(value: Any, limit: int = 0) -> Text:
    # Text, not str: values and column names hold brackets that rich would read as markup.
    if value is None:
        return Text("-", style="dim")
    text = str(value)
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return Text(text)


def _valid_cell(flag: Any) -> Text:
    return Text("yes", style="green") if flag == 1 else Text("no", style="red")


def parameter_columns(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    """Return the parameter column names of Task rows (not id, result, provenance…), in order.

    Args:
        rows: Rows of one Task table.
    """
    if not rows:
        return []
    return [name for name in rows[0] if name.lower() not in RESERVED_COLUMNS]


def task_tables_table(summaries: Iterable[TaskTableSummary]) -> Table:
    """Build the table of Task tables (name, rows, valid rows, last run).

    Args:
        summaries: From `lute_kernel.db.list_tasks`.
    """
    table = Table(title="Task tables")
    table.add_column("Task")
    table.add_column("rows", justify="right")
    table.add_column("valid", justify="right")
    table.add_column("last run (UTC)")
    for summary in summaries:
        table.add_row(
            _cell(summary.name),
            _cell(summary.rows),
            _cell(summary.valid),
            _cell(summary.last_timestamp),
        )
    return table


def rows_table(task_name: str, rows: Sequence[Mapping[str, Any]], max_params: int = 3) -> Table:
    """Build the list of runs of one Task, one line per row, in the order given.

    Args:
        task_name: Shown as the title.
        rows: From `lute_kernel.db.list_rows`.
        max_params: How many parameter columns to show after the fixed ones.
    """
    params = parameter_columns(rows)[:max_params]
    table = Table(title=Text(task_name))
    for header in ("id", "timestamp (UTC)", "status", "valid", "summary", *params):
        table.add_column(Text(header), no_wrap=header.startswith("timestamp"))
    for row in rows:
        table.add_row(
            _cell(row.get("id")),
            _cell(row.get("timestamp")),
            _cell(row.get("result.task_status")),
            _valid_cell(row.get("valid_flag")),
            _cell(row.get("result.summary"), MAX_CELL),
            *(_cell(row.get(name), MAX_CELL) for name in params),
        )
    return table


def row_detail_table(task_name: str, row: Mapping[str, Any]) -> Table:
    """Build a two-column (column, value) view of one row, every column included.

    Args:
        task_name: Shown in the title with the row id.
        row: From `lute_kernel.db.get_row`.
    """
    table = Table(title=Text(f"{task_name} #{row.get('id')}"), show_header=True)
    table.add_column("column", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in row.items():
        cell = _valid_cell(value) if name == "valid_flag" else _laid_out(value)
        table.add_row(Text(name), cell)
    return table


def _laid_out(value: Any) -> Text:
    """A detail cell: JSON text (argv, env, payloads) indented, so it wraps readably; the rest as is."""
    if value is None:
        return Text("-", style="dim")
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if text[:1] in "[{":
        try:
            text = json.dumps(json.loads(text), indent=2)
        except ValueError:
            pass
    return Text(text)
