"""Reading whole tables of ``lute.db`` for people: the viewer, the report and the export.

Owns reading every row of a table (a Task table, or ``gen_cfg``/``exec_cfg``), with each Task row's
header and environment joined in as ``gen_cfg.*``/``exec_cfg.*`` keys, and the cheap signature a
viewer compares to see that the database changed. Every connection is read-only (``mode=ro``) and
lives for one call: with WAL a reader never makes a writer wait, and nothing here ever writes, creates
or locks the file. Must not know how rows are shown.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from lute_kernel.db.connection import SHARED_TABLES, PathLike, check_task_name, db_path, read_connection
from lute_kernel.db.models import reflect_task_table, tuples
from lute_kernel.errors import InputError

MAX_ROWS = 100_000
"""Most rows read of one table in one call (a viewer or a report of more would not be read by anyone)."""

__all__ = ["MAX_ROWS", "change_signature", "read_table", "table_names"]


def table_names(work_dir: PathLike) -> List[str]:
    """Return the Task tables of ``lute.db``, sorted (not ``gen_cfg``/``exec_cfg``).

    Raises:
        InputError: There is no database in ``work_dir``.
        DatabaseError: It cannot be read.
    """
    names: List[str] = []
    with read_connection(work_dir) as database:
        for name in sorted(database.get_tables()):
            if name.lower() in SHARED_TABLES:
                continue
            try:
                check_task_name(name)
            except InputError:
                continue
            names.append(name)
    return names


def _all_rows(database: Any, table: str, newest_first: bool, limit: int) -> List[Dict[str, Any]]:
    model = reflect_task_table(database, table)
    if model is None:
        return []
    names = list(model.columns)
    order = model.row_id().desc() if newest_first else model.row_id()
    query = model.select(*model.columns.values()).order_by(order).limit(limit)
    return [dict(zip(names, row)) for row in tuples(query)]


def _by_id(database: Any, table: str) -> Dict[int, Dict[str, Any]]:
    return {row["id"]: row for row in _all_rows(database, table, False, MAX_ROWS) if isinstance(row.get("id"), int)}


def read_table(
    work_dir: PathLike,
    table: str,
    *,
    newest_first: bool = True,
    limit: int = MAX_ROWS,
    with_config: bool = True,
) -> List[Dict[str, Any]]:
    """Return the rows of one table as ``{column: value}``.

    Args:
        work_dir: The work directory holding ``lute.db``.
        table: A Task table, ``gen_cfg`` or ``exec_cfg``.
        newest_first: Highest id first (else oldest first).
        limit: At most this many rows (capped at `MAX_ROWS`).
        with_config: Add each Task row's ``gen_cfg.*`` and ``exec_cfg.*`` values (not ``gen_cfg.id``).

    Raises:
        InputError: No database, no such table, or an invalid name.
        DatabaseError: The database cannot be read.
    """
    shared = table.lower() in SHARED_TABLES
    if not shared:
        check_task_name(table)
    limit = max(0, min(int(limit), MAX_ROWS))
    with read_connection(work_dir) as database:
        if reflect_task_table(database, table) is None:
            raise InputError(f"no table {table!r} in {db_path(work_dir)}")
        rows = _all_rows(database, table, newest_first, limit)
        if shared or not with_config:
            return rows
        for other in SHARED_TABLES:
            config = _by_id(database, other) if reflect_task_table(database, other) is not None else {}
            for row in rows:
                found = config.get(row.get(f"{other}_id"))  # type: ignore[arg-type]
                if found is not None:
                    row.update({f"{other}.{k}": v for k, v in found.items() if k != "id"})
    return rows


def change_signature(work_dir: PathLike) -> Optional[Tuple[Tuple[int, int], ...]]:
    """Return what changes whenever a writer commits: size and mtime of ``lute.db`` and its WAL.

    None when there is no database. Only ``stat`` is called: the file is not opened.
    """
    path = db_path(work_dir)
    signature = []
    for name in (str(path), f"{path}-wal"):
        try:
            info = os.stat(name)
        except OSError:
            if name == str(path):
                return None
            signature.append((0, 0))
            continue
        signature.append((info.st_size, info.st_mtime_ns))
    return tuple(signature)
