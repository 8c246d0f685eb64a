"""Writing to the run database: a RUNNING row before launch, its final state after, and invalidation.

Owns every write of ``lute.db``: `begin_run` (the Task row, RUNNING and invalid, with its
parameters and the kernel's pid), `finish_run` (the same row's final status, result and
provenance; only a RUNNING row is updated, so a final row never changes again), `record_run`
(both at once), and `invalidate`. Each call is one ``BEGIN IMMEDIATE`` transaction, so concurrent
writers (parallel flow Tasks, several processes) never lose a row or a column. Anything the
database refuses is a `DatabaseError` naming the file and why; parameters it would refuse are
refused before the file is even opened. Must not be called from Tasks or the worker: only the
executor records runs (and the CLI invalidates).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Dict

import peewee

from lute_kernel.db.connection import PathLike, check_task_name, db_path, read_connection, write_connection
from lute_kernel.db.flatten import SqlValue, column_type
from lute_kernel.db.layout import TASK_TRAILING_COLUMNS
from lute_kernel.db.liveness import RUNNING
from lute_kernel.db.models import ExecCfg, GenCfg, TaskTable, reflect_task_table, tuples
from lute_kernel.db.recordable import INT64_MAX, Unrecordable, header_row, recordable_row
from lute_kernel.db.records import FINAL_STATUSES, RunRecord, exec_cfg_values, final_values, running_values
from lute_kernel.db.schema import ensure_shared_tables, ensure_task_table
from lute_kernel.errors import DatabaseError, InputError

__all__ = ["begin_run", "finish_run", "invalidate", "record_run"]


def _field(model: type[TaskTable], name: str) -> peewee.Field[Any]:
    # SQLite column names ignore case; an upstream table may spell a fixed column differently.
    field = model.column(name)
    if field is None:
        raise DatabaseError(f"table {model._meta.table_name!r} has no column {name!r}")
    return field


def _insert_unique(database: peewee.SqliteDatabase, model: type[peewee.Model], values: Mapping[str, Any]) -> int:
    """Return the id of the row equal to ``values`` (NULLs equal too), inserting it if new.

    Runs inside the writing transaction, so two writers cannot both insert the same row.
    """
    fields = model._meta.fields
    match = [fields[name] >> value for name, value in values.items()]  # ``>>`` is SQL's IS
    query = model.select(fields["id"]).where(*match).order_by(fields["id"].desc()).limit(1)
    for (row_id,) in query.tuples().execute(database):
        return int(row_id)
    return int(model.insert(dict(values)).execute(database))


def _write_row(work_dir: PathLike, record: RunRecord, trailing: Mapping[str, SqlValue]) -> int:
    task_name = check_task_name(record.task_name)
    path = db_path(work_dir)
    try:
        header = header_row(record.header)
        recordable_row(record.parameters)  # before the file is opened: a refusal leaves no lute.db
    except Unrecordable as err:
        raise DatabaseError(f"{record.task_name} not recorded in {path}: {err}") from None
    with write_connection(work_dir) as database, database.atomic():
        reflected = reflect_task_table(database, task_name)  # None: no table yet
        try:
            flat = recordable_row(record.parameters, reflected.columns if reflected is not None else ())
        except Unrecordable as err:  # the table changed since: another writer added a clashing column
            raise DatabaseError(f"{record.task_name} not recorded in {path}: {err}") from None
        columns = {name: column_type(value) for name, value in flat.items()}
        columns.update(TASK_TRAILING_COLUMNS)
        ensure_shared_tables(database)
        model = ensure_task_table(database, task_name, columns, reflected=reflected)
        values: Dict[str, SqlValue] = {
            "gen_cfg_id": _insert_unique(database, GenCfg, header),
            "exec_cfg_id": _insert_unique(database, ExecCfg, exec_cfg_values(record)),
            **flat,
            **trailing,
        }
        fields = {column.lower(): field for column, field in model.columns.items()}
        return int(model.insert({fields[name.lower()]: value for name, value in values.items()}).execute())


def begin_run(work_dir: PathLike, record: RunRecord) -> int:
    """Write a run's row before its launch: RUNNING, invalid, with parameters and provenance.

    The row names this kernel (``prov.host``, ``prov.pid``, ``prov.pid_start``), so readers can
    tell a run whose kernel died (LOST) from one still going. Creates the database and tables as
    needed; identical ``gen_cfg``/``exec_cfg`` rows are shared; a new parameter adds a column.

    Args:
        work_dir: The header's ``work_dir`` (must exist).
        record: The run as known before launch (status, result and end are ignored).

    Returns:
        The row's id, for `finish_run`.

    Raises:
        InputError: The Task name is not a valid table name.
        DatabaseError: The row cannot be written (the message names the database and why).
    """
    return _write_row(work_dir, record, running_values(record))


def record_run(work_dir: PathLike, record: RunRecord) -> int:
    """Write one finished run in one go (`begin_run` and `finish_run` at once); return its row id.

    Raises:
        InputError: The Task name is not a valid table name.
        DatabaseError: The row cannot be written (the message names the database and why).
    """
    return _write_row(work_dir, record, final_values(record))


def _check_row_id(row_id: int) -> int:
    if isinstance(row_id, bool) or not isinstance(row_id, int) or not 1 <= row_id <= INT64_MAX:
        raise InputError(f"{row_id!r} is not a row id (ids run from 1 to {INT64_MAX})")
    return row_id


def finish_run(work_dir: PathLike, row_id: int, record: RunRecord) -> None:
    """Write a run's final state into the RUNNING row `begin_run` wrote.

    Updates the result columns, ``valid_flag`` (1 only for COMPLETED), and the provenance a run
    learns after its launch (start, end, exit code); parameters and the rest stay as written.

    Args:
        work_dir: The header's ``work_dir``.
        row_id: The id `begin_run` returned.
        record: The finished run; its ``task_status`` must be final (COMPLETED, FAILED…).

    Raises:
        ValueError: ``record.task_status`` is not a final status.
        DatabaseError: The row does not exist, is not RUNNING any more (a final row never
            changes), or cannot be written.
    """
    if record.task_status not in FINAL_STATUSES:
        raise ValueError(f"{record.task_status!r} is not a final status ({', '.join(sorted(FINAL_STATUSES))})")
    task_name = check_task_name(record.task_name)
    path = db_path(work_dir)
    try:
        _check_row_id(row_id)
    except InputError as err:
        raise DatabaseError(f"{path}: {err}") from None
    if not path.is_file():
        raise DatabaseError(f"{task_name} row {row_id} not finished: {path} is gone")
    with write_connection(work_dir) as database, database.atomic():
        reflected = reflect_task_table(database, task_name)
        if reflected is None:
            raise DatabaseError(f"{task_name} row {row_id} not finished: {path} has no Task table {task_name!r}")
        model = ensure_task_table(database, task_name, dict(TASK_TRAILING_COLUMNS), reflected=reflected)
        status = _field(model, "result.task_status")
        changes = {_field(model, name): value for name, value in final_values(record, whole=False).items()}
        if model.update(changes).where((model.row_id() == row_id) & (status == RUNNING)).execute():
            return
        found = [row[0] for row in tuples(model.select(status).where(model.row_id() == row_id))]
    if not found:
        raise DatabaseError(f"{task_name} row {row_id} not finished: no such row in {path}")
    raise DatabaseError(f"{task_name} row {row_id} is already {found[0]}; a final row never changes")


def invalidate(work_dir: PathLike, task_name: str, row_id: int) -> None:
    """Mark one row invalid (``valid_flag = 0``) so later Tasks no longer read its values.

    Args:
        work_dir: The work directory holding ``lute.db``.
        task_name: The Task (table) name.
        row_id: The row's id.

    Raises:
        InputError: The database, the Task table or the row does not exist, or the id is out of range.
        DatabaseError: The database cannot be written.
    """
    check_task_name(task_name)
    _check_row_id(row_id)
    with read_connection(work_dir, writable=True) as database, database.atomic():
        model = reflect_task_table(database, task_name)
        if model is None:
            raise InputError(f"no Task table {task_name!r} in the database")
        if not model.update({_field(model, "valid_flag"): 0}).where(model.row_id() == row_id).execute():
            raise InputError(f"no row {row_id} in Task table {task_name!r}")
