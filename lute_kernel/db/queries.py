"""Reading the run database: latest values for later Tasks, and listings for the CLI viewer.

Owns every read of ``lute.db``, written with peewee's query builder over models reflected from
the file. Must not create the database or change it: connections are opened read-only
(``mode=ro``), and a missing database, table, column or row is an answer (None) for the
``latest_*`` look-ups and an `InputError` for the listings a user asked for by name.

DB-derived defaults read the newest valid row *of the same run*: ``latest_*`` take the header's
``experiment`` and ``run`` and match them in ``gen_cfg`` (upstream filters on the run; several runs
share one work_dir and flows run them in parallel). ``run`` is compared the way SQLite stored it
(``gen_cfg.run`` has INTEGER affinity): ``12``, ``"12"`` and ``"012"`` are run 12; ``"12_<stamp>"``
is only itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

import peewee

from lute_kernel.db.connection import SHARED_TABLES, PathLike, check_task_name, db_path, read_connection
from lute_kernel.db.models import GenCfg, TaskTable, reflect_task_table, tuples
from lute_kernel.db.recordable import INT64_MAX
from lute_kernel.db.schema import table_exists
from lute_kernel.errors import InputError

RunNumber = Union[int, str]

__all__ = [
    "RunNumber",
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


def _is_task_name(name: str) -> bool:
    try:
        check_task_name(name)
    except InputError:
        return False
    return True


def _rows(model: type[TaskTable], query: Any) -> List[Dict[str, Any]]:
    names = list(model.columns)
    return [dict(zip(names, row)) for row in tuples(query)]


def _newest(
    database: peewee.SqliteDatabase,
    model: type[TaskTable],
    selected: List[peewee.Field[Any]],
    *,
    valid_only: bool,
    experiment: Optional[str],
    run: Optional[RunNumber],
) -> Optional[Any]:
    """Return the query of the newest matching row, or None when nothing can match."""
    query: Any = model.select(*selected)
    if valid_only:
        valid = model.column("valid_flag")
        if valid is None:
            return None
        query = query.where(valid == 1)
    if experiment is not None or run is not None:
        gen_cfg_id = model.column("gen_cfg_id")
        if gen_cfg_id is None or not table_exists(database, "gen_cfg"):
            return None
        query = query.join(GenCfg, on=(GenCfg.id == gen_cfg_id))
        if experiment is not None:
            query = query.where(GenCfg.experiment == experiment)
        if run is not None:
            query = query.where(GenCfg.run == run)
    return query.order_by(model.row_id().desc()).limit(1)


def latest_row(
    work_dir: PathLike,
    task_name: str,
    *,
    valid_only: bool = True,
    experiment: Optional[str] = None,
    run: Optional[RunNumber] = None,
) -> Optional[Dict[str, Any]]:
    """Return the newest row of a Task table as ``{column: value}``.

    Args:
        work_dir: The work directory holding ``lute.db``.
        task_name: The Task (table) name.
        valid_only: Skip rows whose ``valid_flag`` is not 1.
        experiment: Only rows whose header had this experiment.
        run: Only rows whose header had this run.

    Returns:
        The row, or None when the database, table or a matching row does not exist.
    """
    if not db_path(work_dir).is_file() or not _is_task_name(task_name):
        return None
    with read_connection(work_dir) as database:
        model = reflect_task_table(database, task_name)
        if model is None:
            return None
        query = _newest(
            database, model, list(model.columns.values()), valid_only=valid_only, experiment=experiment, run=run
        )
        rows = [] if query is None else _rows(model, query)
    return rows[0] if rows else None


def latest_value(
    work_dir: PathLike,
    task_name: str,
    key: str,
    *,
    experiment: Optional[str] = None,
    run: Optional[RunNumber] = None,
) -> Optional[Any]:
    """Return one column of a Task's newest valid row, e.g. ``outfile_name`` or ``result.payload``.

    Args:
        work_dir: The work directory holding ``lute.db``.
        task_name: The Task (table) name.
        key: A flattened column name (``compound_var.int_var``, ``a.b[0]``, ``result.payload``).
        experiment: Only rows whose header had this experiment.
        run: Only rows whose header had this run (a row of another run is never picked).

    Returns:
        The stored value (JSON text stays text), or None when the database, table, column or a
        matching valid row does not exist. Never creates the database.
    """
    if not db_path(work_dir).is_file() or not _is_task_name(task_name) or not key:
        return None
    with read_connection(work_dir) as database:
        model = reflect_task_table(database, task_name)
        column = None if model is None else model.column(key)
        if model is None or column is None:
            return None
        query = _newest(database, model, [column], valid_only=True, experiment=experiment, run=run)
        found = [] if query is None else [row[0] for row in tuples(query)]
    return found[0] if found else None


def list_tasks(work_dir: PathLike) -> List[TaskTableSummary]:
    """Summarise every Task table, sorted by name.

    Args:
        work_dir: The work directory holding ``lute.db``.

    Raises:
        InputError: There is no database in ``work_dir``.
    """
    summaries: List[TaskTableSummary] = []
    with read_connection(work_dir) as database:
        for name in sorted(database.get_tables()):
            if name in SHARED_TABLES or not _is_task_name(name):
                continue
            model = reflect_task_table(database, name)
            if model is None:
                continue
            valid, stamp = model.column("valid_flag"), model.column("timestamp")
            count_valid = peewee.fn.COALESCE(peewee.fn.SUM(valid == 1), 0) if valid is not None else peewee.Value(0)
            last = peewee.fn.MAX(stamp) if stamp is not None else peewee.Value(None)
            counts = model.select(peewee.fn.COUNT(model.row_id()), count_valid, last)
            for rows, valid_rows, last_stamp in tuples(counts):
                summaries.append(TaskTableSummary(name, int(rows), int(valid_rows), last_stamp))
    return summaries


def _limit(value: int) -> int:
    return min(max(int(value), 0), INT64_MAX)


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
        model = reflect_task_table(database, task_name)
        if model is None:
            raise InputError(f"no Task table {task_name!r} in {db_path(work_dir)}")
        query = model.select(*model.columns.values()).order_by(model.row_id().desc()).limit(_limit(limit))
        return _rows(model, query)


def get_row(work_dir: PathLike, task_name: str, row_id: int) -> Dict[str, Any]:
    """Return one row with its shared configuration, as ``gen_cfg.*`` and ``exec_cfg.*`` keys.

    Args:
        work_dir: The work directory holding ``lute.db``.
        task_name: The Task (table) name.
        row_id: The row's id.

    Raises:
        InputError: The database, the Task table or the row does not exist, or the id is out of range.
    """
    check_task_name(task_name)
    if isinstance(row_id, bool) or not 1 <= int(row_id) <= INT64_MAX:
        raise InputError(f"no row {row_id} in Task table {task_name!r}: ids run from 1 to {INT64_MAX}")
    with read_connection(work_dir) as database:
        model = reflect_task_table(database, task_name)
        if model is None:
            raise InputError(f"no Task table {task_name!r} in {db_path(work_dir)}")
        rows = _rows(model, model.select(*model.columns.values()).where(model.row_id() == int(row_id)))
        if not rows:
            raise InputError(f"no row {row_id} in Task table {task_name!r}")
        row = rows[0]
        for table in SHARED_TABLES:
            ref = row.get(f"{table}_id")
            shared = None if ref is None else reflect_task_table(database, table)  # as the file has it
            if shared is None or not isinstance(ref, int):
                continue
            for values in _rows(shared, shared.select(*shared.columns.values()).where(shared.row_id() == ref)):
                row.update({f"{table}.{k}": v for k, v in values.items() if k != "id"})
    return row
