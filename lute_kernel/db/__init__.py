"""The run database ``<work_dir>/lute.db``: upstream LUTE's seed schema, written with peewee.

Re-exports the public API. Only the executor records runs (`check_recordable` before launch,
`begin_run` before it, `finish_run` after it); readers (config substitution of
``{{ Task.param }}``, DB-derived defaults, skip-if-done, the ``lute-kernel db`` commands, the viewer
and the report) never create or change the database, except `invalidate`, which a user asks for explicitly.

Each name is imported from its module on first use (PEP 562), so a command pays only for the part
of the DB layer it touches (the run path checks before launch and writes after; the viewer reads).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict

# Eager: the function shares its module's name, and a submodule imported later would shadow a lazy one.
from lute_kernel.db.flatten import flatten

_WHERE: Dict[str, str] = {
    "change_signature": "browse",
    "read_table": "browse",
    "table_names": "browse",
    "db_path": "connection",
    "find_done_row": "done",
    "recorded_env": "env",
    "LOST": "liveness",
    "RUNNING": "liveness",
    "display_status": "liveness",
    "is_lost": "liveness",
    "TaskTableSummary": "queries",
    "get_row": "queries",
    "latest_row": "queries",
    "latest_value": "queries",
    "list_rows": "queries",
    "list_tasks": "queries",
    "check_recordable": "recordable",
    "FINAL_STATUSES": "records",
    "RunRecord": "records",
    "begin_run": "writer",
    "finish_run": "writer",
    "invalidate": "writer",
    "record_run": "writer",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from lute_kernel.db.browse import change_signature, read_table, table_names
    from lute_kernel.db.connection import db_path
    from lute_kernel.db.done import find_done_row
    from lute_kernel.db.env import recorded_env
    from lute_kernel.db.liveness import LOST, RUNNING, display_status, is_lost
    from lute_kernel.db.queries import TaskTableSummary, get_row, latest_row, latest_value, list_rows, list_tasks
    from lute_kernel.db.recordable import check_recordable
    from lute_kernel.db.records import FINAL_STATUSES, RunRecord
    from lute_kernel.db.writer import begin_run, finish_run, invalidate, record_run

__all__ = [
    "FINAL_STATUSES",
    "LOST",
    "RUNNING",
    "RunRecord",
    "TaskTableSummary",
    "begin_run",
    "change_signature",
    "check_recordable",
    "db_path",
    "display_status",
    "find_done_row",
    "finish_run",
    "flatten",
    "get_row",
    "invalidate",
    "is_lost",
    "latest_row",
    "latest_value",
    "list_rows",
    "list_tasks",
    "read_table",
    "record_run",
    "recorded_env",
    "table_names",
]
