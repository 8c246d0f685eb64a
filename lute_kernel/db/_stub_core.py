"""TEMPORARY stand-ins until the DB rework lands (deleted at merge)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping

from lute_kernel.db.records import RunRecord as _RunRecord
from lute_kernel.db.records import record_run

_pending: Dict[int, Any] = {}


@dataclass(frozen=True)
class RunRecord(_RunRecord):
    pid: int = 0


def check_recordable(work_dir: Any, task_name: str, parameters: Mapping[str, Any]) -> None:
    return None


def recorded_env(env: Mapping[str, str]) -> Dict[str, str]:
    return {k: v for k, v in env.items() if "TOKEN" not in k.upper()}


def begin_run(work_dir: Any, record: RunRecord) -> int:
    return -1


def finish_run(work_dir: Any, row_id: int, record: RunRecord) -> int:
    fields = {k: getattr(record, k) for k in _RunRecord.__dataclass_fields__}
    return record_run(work_dir, _RunRecord(**fields))
