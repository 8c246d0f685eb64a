"""Reading the run database: latest values for later Tasks, and listings for the CLI viewer.

Owns every read of ``lute.db``. Must not create the database or change it: connections are opened
read-only (``mode=ro``), and a missing database, table, column or row is an answer (None) for the
``latest_*`` look-ups and an `InputError` for the listings a user asked for by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from lute_kernel.db.connection import (
    SHARED_TABLES,
    PathLike,
    check_task_name,
    db_path,
    quote,
    read_connection,
)
from lute_kernel.db.schema import table_columns, table_exists
from lute_kernel.errors import InputError

__all__ = [
    "TaskTableSummary",
    "get_row",
    "latest_row",
    "latest_value",
    "list_rows",
    "list_tasks",
]


@dataclass(frozen=True)
class TaskTableSummary:
    """One Task table at a glance.

    Attributes:
        name: The Task (table) name.
        rows: How many runs are recorded.
        valid: How many of them are valid.
        last_timestamp: The newest row's timestamp (``YYYY-MM-DD HH:MM:SS`` UTC), None if empty.
    """

    name: str
    rows: int
    valid: int
    last_timestamp: Optional[str]


def _rows_as_dicts(cursor: Any) -> List[Dict[str, Any]]:
    names = [str(column[0]) for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _is_task_name(name: str) -> bool:
    try:
        check_task_name(name)
    except InputError:
        return False
    return True


def latest_row(work_dir: PathLike, task_name: str, *, valid_only: bool = True) -> Optional[Dict[str, Any]]:
    """Return the newest row of a Task table as ``{column: value}``.

    Args:
        work_dir: The work directory holding ``lute.db``.
        task_name: The Task (table) name.
        valid_only: Skip rows whose ``valid_flag`` is not 1.

    Returns:
        The row, or None when the database, table or a matching row does not exist.
    """
    if not db_path(work_dir).is_file() or not _is_task_name(task_name):
        return None
    where = "WHERE valid_flag = 1 " if valid_only else ""
    with read_connection(work_dir) as database:
        if not table_exists(database, task_name):
            return None
        cursor = database.execute_sql(f"SELECT * FROM {quote(task_name)} {where}ORDER BY id DESC LIMIT 1")
        rows = _rows_as_dicts(cursor)
    return rows[0] if rows else None


def latest_value(work_dir: PathLike, task_name: str, key: str) -> Optional[Any]:
    """Return one column of a Task's newest valid row, e.g. ``outfile_name`` or ``result.payload``.

    Args:
        work_dir: The work directory holding ``lute.db``.
        task_name: The Task (table) name.
        key: A flattened column name (``compound_var.int_var``, ``a.b[0]``, ``result.payload``).

    Returns:
        The stored value (JSON text stays text), or None when the database, table, column or a
        valid row does not exist. Never creates the database.
    """
    if not db_path(work_dir).is_file() or not _is_task_name(task_name) or not key:
        return None
    with read_connection(work_dir) as database:
        columns = {name.lower() for name in table_columns(database, task_name)}
        if key.lower() not in columns:
            return None
        cursor = database.execute_sql(
            f"SELECT {quote(key)} FROM {quote(task_name)} WHERE valid_flag = 1 ORDER BY id DESC LIMIT 1"
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def list_tasks(work_dir: PathLike) -> List[TaskTableSummary]:
    """Summarise every Task table, sorted by name.

    Args:
        work_dir: The work directory holding ``lute.db``.

    Raises:
        InputError: There is no database in ``work_dir``.
    """
    summaries: List[TaskTableSummary] = []
    with read_connection(work_dir) as database:
        cursor = database.execute_sql("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        names = [str(row[0]) for row in cursor.fetchall()]
        for name in names:
            if name in SHARED_TABLES or not _is_task_name(name):
                continue
            cursor = database.execute_sql(
                f"SELECT COUNT(*), COALESCE(SUM(valid_flag = 1), 0), MAX(timestamp) FROM {quote(name)}"
            )
            rows, valid, last = cursor.fetchone()
            summaries.append(TaskTableSummary(name, int(rows), int(valid), last))
    return summaries


def list_rows(work_dir: PathLike, task_name: str, limit: int = 20) -> List[Dict[str, Any]]:
    """Return the newest rows of a Task table, newest first.

    Args:
        work_dir: The work directory holding ``lute.db``.
        task_name: The Task (table) name.
        limit: At most this many rows.

    Raises:
        InputError: The database or the Task table does not exist, or the name is invalid.
    """
    check_task_name(task_name)
    with read_connection(work_dir) as database:
        if not table_exists(database, task_name):
            raise InputError(f"no Task table {task_name!r} in {db_path(work_dir)}")
        cursor = database.execute_sql(
            f"SELECT * FROM {quote(task_name)} ORDER BY id DESC LIMIT ?", (max(int(limit), 0),)
        )
        return _rows_as_dicts(cursor)


def get_row(work_dir: PathLike, task_name: str, row_id: int) -> Dict[str, Any]:
    """Return one row with its shared configuration, as ``gen_cfg.*`` and ``exec_cfg.*`` keys.

    Args:
        work_dir: The work directory holding ``lute.db``.
        task_name: The Task (table) name.
        row_id: The row's id.

    Raises:
        InputError: The database, the Task table or the row does not exist.
    """
    check_task_name(task_name)
    with read_connection(work_dir) as database:
        if not table_exists(database, task_name):
            raise InputError(f"no Task table {task_name!r} in {db_path(work_dir)}")
        cursor = database.execute_sql(f"SELECT * FROM {quote(task_name)} WHERE id = ?", (int(row_id),))
        rows = _rows_as_dicts(cursor)
        if not rows:
            raise InputError(f"no row {row_id} in Task table {task_name!r}")
        row = rows[0]
        for table in SHARED_TABLES:
            ref = row.get(f"{table}_id")
            if ref is None or not table_exists(database, table):
                continue
            cursor = database.execute_sql(f"SELECT * FROM {quote(table)} WHERE id = ?", (ref,))
            for shared in _rows_as_dicts(cursor):
                row.update({f"{table}.{k}": v for k, v in shared.items() if k != "id"})
    return row
