"""What is recorded about one Task run, and how it becomes column values.

Owns `RunRecord` (everything the executor knows about a run, before launch and after it) and its
pure translation into ``gen_cfg``/``exec_cfg`` values and the Task row's trailing columns (result,
validity, provenance): text that is not UTF-8 is escaped, text longer than SQLite allows is
replaced by a note, the environment goes through `recorded_env`. Must not open the database:
`lute_kernel.db.writer` writes what this module computes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Optional

from lute_kernel.db.env import recorded_env
from lute_kernel.db.flatten import SqlValue
from lute_kernel.db.liveness import RUNNING, kernel_identity
from lute_kernel.db.recordable import sqlite_limits

FINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "TIMEDOUT", "CANCELLED", "STOPPED", "LOST"})
"""Upstream's final Task statuses (plus LOST); a row in one of them never changes again."""

__all__ = ["FINAL_STATUSES", "RunRecord", "exec_cfg_values", "final_values", "running_values"]


@dataclass(frozen=True)
class RunRecord:
    """Everything recorded about one Task run.

    Attributes:
        task_name: The Task name, also its table name.
        header: The config header; only title, experiment, run, date, lute_version and
            task_timeout are stored (in ``gen_cfg``).
        parameters: Validated Task parameters without ``lute_config``, JSON-able, nested.
        task_status: ``COMPLETED``, ``FAILED``, ``TIMEDOUT``, ``CANCELLED``… (`begin_run` writes
            ``RUNNING`` whatever this says).
        summary: The Task's one-line summary.
        payload: The result payload: str stored as-is, anything else as JSON.
        impl_schemas: The result's implementation schemas string.
        valid: Whether later Tasks may read this row; stored as valid only if the run COMPLETED.
        env: The environment the Task received; only `recorded_env` of it is stored.
        env_allowlist: Names (or ``fnmatch`` patterns) besides ``LUTE_*``/``SLURM_*`` the Task was
            given on purpose (the site's ``env_allowlist``, the Task's ``env``); stored too.
        poll_interval: The executor's poll interval, seconds.
        communicator_desc: How the Task talked to the executor, e.g. ``ZMQ ipc (json v1)``.
        runtime: Runtime name (``local``, ``apptainer``).
        launcher: Launcher name (``direct``, ``srun``, ``mpirun``).
        image: Image name, if any.
        image_sha256: SHA-256 of the image file, if any.
        kernel_version: lute-kernel version.
        argv: The launched argv.
        host: Host name the executor ran on (default: this host).
        start: When the Task started (naive datetimes are taken as UTC).
        end: When the Task ended (naive datetimes are taken as UTC).
        exit_code: The process exit code; None if it never started or is unknown.
        config_path: The configuration file (absolute), so that the row can be run again.
        site: The site profile the run used.
        ranks: How many MPI ranks ran (1 for single-process Tasks).
        pid: The kernel's pid (default: this process's).
        pid_start: That pid's start time, ``/proc/<pid>/stat`` field 22 (default: this process's).
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
    env_allowlist: Sequence[str] = ()
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
    pid: Optional[int] = None
    pid_start: Optional[int] = None


def _iso_utc(moment: Optional[datetime]) -> Optional[str]:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def _text(value: Optional[str]) -> Optional[str]:
    """Return text SQLite can store: lone surrogates escaped, over-long text replaced by a note."""
    if value is None:
        return None
    try:
        encoded = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        encoded = len(value.encode("utf-8"))
    limit = sqlite_limits().length // 4  # several such values share one row
    if encoded > limit:
        return f"(not recorded: {encoded:,} bytes, more than the {limit:,} kept per value)"
    return value


def _payload_text(payload: Any) -> Optional[str]:
    if payload is None or isinstance(payload, str):
        return _text(payload)
    try:
        return _text(json.dumps(payload))
    except (TypeError, ValueError):
        return _text(str(payload))


def _small_int(value: Optional[int]) -> Optional[int]:
    # Exit codes, ranks and pids are small; anything else would overflow SQLite's INTEGER.
    return value if value is None or -(2**63) <= int(value) < 2**63 else None


def exec_cfg_values(record: RunRecord) -> Dict[str, SqlValue]:
    """Return the ``exec_cfg`` row of a run: its recorded environment as sorted JSON, and settings."""
    return {
        "env": json.dumps(recorded_env(record.env, record.env_allowlist), sort_keys=True),
        "poll_interval": float(record.poll_interval),
        "communicator_desc": _text(record.communicator_desc),
    }


def _result_values(record: RunRecord) -> Dict[str, SqlValue]:
    return {
        "result.task_status": _text(record.task_status),
        "result.summary": _text(record.summary),
        "result.payload": _payload_text(record.payload),
        "result.impl_schemas": _text(record.impl_schemas),
        "valid_flag": int(record.valid and record.task_status == "COMPLETED"),
    }


def _provenance(record: RunRecord) -> Dict[str, SqlValue]:
    host, pid, pid_start = kernel_identity()
    if record.pid is not None:
        pid, pid_start = record.pid, record.pid_start
    return {
        "prov.runtime": _text(record.runtime),
        "prov.launcher": _text(record.launcher),
        "prov.image": _text(record.image),
        "prov.image_sha256": _text(record.image_sha256),
        "prov.kernel_version": _text(record.kernel_version),
        "prov.argv": _text(json.dumps(list(record.argv))),
        "prov.host": _text(record.host or host),
        "prov.start": _iso_utc(record.start),
        "prov.end": _iso_utc(record.end),
        "prov.exit_code": _small_int(record.exit_code),
        "prov.config": _text(record.config_path),
        "prov.site": _text(record.site),
        "prov.ranks": _small_int(record.ranks),
        "prov.pid": _small_int(pid),
        "prov.pid_start": _small_int(pid_start),
    }


def running_values(record: RunRecord) -> Dict[str, SqlValue]:
    """Return the trailing columns of a row written before launch: RUNNING, invalid, provenance."""
    values = _result_values(record)
    values.update({"result.task_status": RUNNING, "result.summary": "", "result.payload": None, "valid_flag": 0})
    values.update(_provenance(record))
    values.update({"prov.end": None, "prov.exit_code": None})
    return values


def final_values(record: RunRecord, *, whole: bool = True) -> Dict[str, SqlValue]:
    """Return the trailing columns of a finished run.

    Args:
        record: The finished run.
        whole: Every trailing column (a one-shot record); else only what a run learns after its
            launch (result, validity, start, end, exit code), to update its RUNNING row.
    """
    values = _result_values(record)
    provenance = _provenance(record)
    if whole:
        values.update(provenance)
    else:
        values.update({name: provenance[name] for name in ("prov.end", "prov.exit_code")})
        if record.start is not None:
            values["prov.start"] = provenance["prov.start"]
    return values
