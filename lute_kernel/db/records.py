"""Writing to the run database: one row per Task run, and marking a row invalid.

Owns `RunRecord` (everything the executor knows about one finished run) and its translation into
``gen_cfg``/``exec_cfg``/Task-table rows, written in one ``BEGIN IMMEDIATE`` transaction so that
concurrent writers (parallel flow Tasks, several processes) never lose a row or a column. Must not
be called from Tasks or the worker: only the executor records runs (and the CLI invalidates).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Optional

from lute_kernel.db.connection import (
    PathLike,
    check_task_name,
    quote,
    read_connection,
    write_connection,
)
from lute_kernel.db.flatten import SqlValue, column_type, flatten, to_sql_value
from lute_kernel.db.schema import (
    GEN_CFG_COLUMNS,
    TASK_TRAILING_COLUMNS,
    check_parameter_columns,
    ensure_shared_tables,
    ensure_task_table,
    insert_row,
    insert_unique,
    table_exists,
)
from lute_kernel.errors import InputError

HEADER_KEY = "lute_config"
"""The parameters key holding the shared header; it goes to ``gen_cfg``, not the Task table."""

__all__ = ["HEADER_KEY", "RunRecord", "invalidate", "record_run"]


@dataclass(frozen=True)
class RunRecord:
    """Everything recorded about one Task run.

    Attributes:
        task_name: The Task name, also its table name.
        header: The config header; only title, experiment, run, date, lute_version and
            task_timeout are stored (in ``gen_cfg``).
        parameters: Validated Task parameters without ``lute_config``, JSON-able, nested.
        task_status: ``COMPLETED``, ``FAILED``, ``TIMEDOUT``, ``CANCELLED``…
        summary: The Task's one-line summary.
        payload: The result payload: str stored as-is, anything else as JSON.
        impl_schemas: The result's implementation schemas string.
        valid: Whether later Tasks may read this row; stored as valid only if the run COMPLETED.
        env: The (allowlisted) environment given to the Task.
        poll_interval: The executor's poll interval, seconds.
        communicator_desc: How the Task talked to the executor, e.g. ``ZMQ ipc (json v1)``.
        runtime: Runtime name (``local``, ``apptainer``).
        launcher: Launcher name (``direct``, ``srun``, ``mpirun``).
        image: Image name, if any.
        image_sha256: SHA-256 of the image file, if any.
        kernel_version: lute-kernel version.
        argv: The launched argv.
        host: Host name the executor ran on.
        start: When the Task started (naive datetimes are taken as UTC).
        end: When the Task ended (naive datetimes are taken as UTC).
        exit_code: The process exit code; None if it never started or is unknown.
        config_path: The configuration file (absolute), so that the row can be run again.
        site: The site profile the run used.
        ranks: How many MPI ranks ran (1 for single-process Tasks).
    """

    task_name: str
    header: Mapping[str, Any]
    parameters: Mapping[str, Any]
    task_status: str
    summary: str
    payload: Any
    impl_schemas: str = ""
    valid: bool = True
    env: Mapping[str, str] = field(default_factory=dict)
    poll_interval: float = 0.0
    communicator_desc: str = ""
    runtime: str = "local"
    launcher: str = "direct"
    image: Optional[str] = None
    image_sha256: Optional[str] = None
    kernel_version: str = ""
    argv: Sequence[str] = ()
    host: str = ""
    start: Optional[datetime] = None
    end: Optional[datetime] = None
    exit_code: Optional[int] = None
    config_path: str = ""
    site: str = ""
    ranks: int = 1


def _iso_utc(moment: Optional[datetime]) -> Optional[str]:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def _payload_text(payload: Any) -> Optional[str]:
    if payload is None or isinstance(payload, str):
        return payload
    try:
        return json.dumps(payload)
    except (TypeError, ValueError):
        return str(payload)


def _gen_cfg_values(header: Mapping[str, Any]) -> Dict[str, SqlValue]:
    return {name: to_sql_value(header.get(name)) for name, _ in GEN_CFG_COLUMNS}


def _exec_cfg_values(record: RunRecord) -> Dict[str, SqlValue]:
    return {
        "env": json.dumps(dict(record.env), sort_keys=True),
        "poll_interval": float(record.poll_interval),
        "communicator_desc": record.communicator_desc,
    }


def _trailing_values(record: RunRecord) -> Dict[str, SqlValue]:
    valid = record.valid and record.task_status == "COMPLETED"
    values: Dict[str, SqlValue] = {
        "result.task_status": record.task_status,
        "result.summary": record.summary,
        "result.payload": _payload_text(record.payload),
        "result.impl_schemas": record.impl_schemas,
        "valid_flag": int(valid),
        "prov.runtime": record.runtime,
        "prov.launcher": record.launcher,
        "prov.image": record.image,
        "prov.image_sha256": record.image_sha256,
        "prov.kernel_version": record.kernel_version,
        "prov.argv": json.dumps(list(record.argv)),
        "prov.host": record.host,
        "prov.start": _iso_utc(record.start),
        "prov.end": _iso_utc(record.end),
        "prov.exit_code": record.exit_code,
        "prov.config": record.config_path,
        "prov.site": record.site,
        "prov.ranks": record.ranks,
    }
    return values


def record_run(work_dir: PathLike, record: RunRecord) -> int:
    """Write one run to ``<work_dir>/lute.db``, creating the database and tables as needed.

    ``gen_cfg`` and ``exec_cfg`` rows are shared: an identical one is reused. Parameters are
    flattened into columns; a parameter not seen before adds a column (older rows keep NULL).
    Schema changes and inserts happen in one ``BEGIN IMMEDIATE`` transaction.

    Args:
        work_dir: The header's ``work_dir`` (must exist).
        record: What to record.

    Returns:
        The id of the new row in the Task table.

    Raises:
        InputError: The Task name is not a valid table name.
        DatabaseError: A parameter name clashes with a reserved column, or the database cannot
            be written (e.g. locked for longer than the busy timeout).
    """
    task_name = check_task_name(record.task_name)
    flat = flatten({k: v for k, v in record.parameters.items() if k != HEADER_KEY})
    check_parameter_columns(flat)
    columns = {name: column_type(value) for name, value in flat.items()}
    columns.update(TASK_TRAILING_COLUMNS)
    row: Dict[str, SqlValue] = dict(flat)
    row.update(_trailing_values(record))
    with write_connection(work_dir) as database, database.atomic():
        ensure_shared_tables(database)
        ensure_task_table(database, task_name, columns)
        ids = {
            "gen_cfg_id": insert_unique(database, "gen_cfg", _gen_cfg_values(record.header)),
            "exec_cfg_id": insert_unique(database, "exec_cfg", _exec_cfg_values(record)),
        }
        return insert_row(database, task_name, {**ids, **row})


def invalidate(work_dir: PathLike, task_name: str, row_id: int) -> None:
    """Mark one row invalid (``valid_flag = 0``) so later Tasks no longer read its values.

    Args:
        work_dir: The work directory holding ``lute.db``.
        task_name: The Task (table) name.
        row_id: The row's id.

    Raises:
        InputError: The database, the Task table or the row does not exist.
        DatabaseError: The database cannot be written.
    """
    check_task_name(task_name)
    with read_connection(work_dir, writable=True) as database, database.atomic():
        if not table_exists(database, task_name):
            raise InputError(f"no Task table {task_name!r} in the database")
        cursor = database.execute_sql(f"UPDATE {quote(task_name)} SET valid_flag = 0 WHERE id = ?", (int(row_id),))
        if cursor.rowcount == 0:
            raise InputError(f"no row {row_id} in Task table {task_name!r}")
