"""The run database ``<work_dir>/lute.db``: upstream LUTE's seed schema, written with peewee.

Re-exports the public API. Only the executor records runs; readers (config substitution of
``{{ Task.param }}``, the ``lute-kernel db`` viewer) never create or change the database, except
`invalidate`, which a user asks for explicitly.
"""

from __future__ import annotations

from lute_kernel.db._stub_core import RunRecord, begin_run, check_recordable, finish_run, recorded_env
from lute_kernel.db.connection import db_path
from lute_kernel.db.flatten import flatten
from lute_kernel.db.queries import (
    TaskTableSummary,
    get_row,
    latest_row,
    latest_value,
    list_rows,
    list_tasks,
)
from lute_kernel.db.records import invalidate, record_run

__all__ = [
    "RunRecord",
    "TaskTableSummary",
    "db_path",
    "flatten",
    "get_row",
    "invalidate",
    "latest_row",
    "latest_value",
    "list_rows",
    "list_tasks",
    "record_run",
]
