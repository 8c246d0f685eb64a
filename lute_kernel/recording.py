"""Recording a run: its RUNNING row before the Task starts, the final row after, the eLog post.

Owns turning a run's outcome into what is kept: the ``RunRecord`` (parameters, result, provenance)
written through ``lute_kernel.db`` (by way of the run's writer process when ``run`` started one,
``lute_kernel.db.writer_process``; the one writer is the kernel's run path, never a Task or the
worker) — first as RUNNING, so a kernel that dies leaves a visible row (``db ls`` shows it LOST),
then finished once with the final status — the dict summary posted to the eLog when the site has
one, the figures kept next to the DB (and written for the eLog when the site says where), and the
one-line summary of a failure. A recording that fails is reported, never raised: the
run's outcome says "not recorded" and why.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from lute_kernel import __version__
from lute_kernel.db.writer_process import PendingRow, begin_run_soon, finish_run
from lute_kernel.errors import LuteError
from lute_kernel.events import EventSink, RunEvent
from lute_kernel.execution import ExecutionOutcome
from lute_kernel.procinfo import process_start_time
from lute_kernel.summaries import payload_for_db, summary_dict, summary_text
from lute_kernel.task import TaskStatus

if TYPE_CHECKING:
    from lute_kernel.api import PreparedRun

COMMUNICATOR = "zmq ipc, json frames v2"


def failure_summary(outcome: ExecutionOutcome) -> str:
    """Return why a run failed: the reason, the exception's last line, or the stderr tail."""
    parts = [outcome.reason]
    if outcome.error and outcome.error.get("traceback"):
        lines = str(outcome.error["traceback"]).strip().splitlines()
        if lines:
            parts.append(lines[-1])
    if outcome.stderr_tail and not outcome.error:
        parts.append("stderr: " + " | ".join(outcome.stderr_tail[-5:]))
    return "; ".join(p for p in parts if p)


def post_summary(prepared: PreparedRun, summary: Any, on_event: EventSink) -> None:
    """Post a dict summary to the site's eLog as run parameters (a failure is a warning, not an error)."""
    as_dict = summary_dict(summary)
    if prepared.site.elog_url and as_dict:
        from lute_kernel.elog import post_run_parameters  # requests only when an eLog is configured

        header = prepared.params.lute_config
        problem = post_run_parameters(prepared.site.elog_url, header.experiment, header.run, as_dict)
        if problem:
            on_event(RunEvent("log", problem, level="WARNING"))


def keep_figures(
    prepared: PreparedRun, row_id: Optional[int], outcome: ExecutionOutcome, on_event: EventSink
) -> List[Path]:
    """Store the figures a Task returned next to the DB (and for the eLog, if the site says where).

    A figure that cannot be kept is a warning: the run's result stands. Returns the stored files.
    """
    figures = (outcome.result or {}).get("figures")
    if not figures or row_id is None:
        return []
    from lute_kernel.figure_store import row_folder, store_figures
    from lute_kernel.figures import FigureError

    start = outcome.start.astimezone(timezone.utc).isoformat()  # as the row's prov.start records it
    try:
        stored = store_figures(prepared.work_dir, prepared.spec.name, row_id, start, figures)
    except (FigureError, OSError) as exc:
        on_event(RunEvent("log", f"figures not kept: {exc}", level="WARNING"))
        return []
    folder = row_folder(prepared.work_dir, prepared.spec.name, row_id)
    on_event(RunEvent("status", f"{len(stored)} figure(s) kept in {folder}"))
    header = prepared.params.lute_config
    summary_root = prepared.site.elog_summary_root(header.experiment, header.run)
    if summary_root is not None:
        from lute_kernel.report import write_summary_pages

        try:
            pages = write_summary_pages(summary_root, stored)
        except (OSError, ValueError) as exc:
            on_event(RunEvent("log", f"eLog summary not written: {exc}", level="WARNING"))
        else:
            for page in pages:
                on_event(RunEvent("status", f"eLog summary written: {page}"))
    return [figure.path for figure in stored]


class RunRecorder:
    """Writes one run's row: RUNNING before any Task code (``begin``, the executor's admission step), final after.

    ``begin_soon`` hands the RUNNING row to the run's writer process before the spawn (its write
    then overlaps the spawn); ``begin`` waits for it, or writes it there and then.
    """

    def __init__(self, prepared: PreparedRun) -> None:
        self.prepared = prepared
        self.row_id: Optional[int] = None
        self.started = datetime.now(timezone.utc)
        self._pending: Optional[PendingRow] = None

    def _fields(
        self, status: TaskStatus, outcome: Optional[ExecutionOutcome], summary: Any, payload: Any
    ) -> Dict[str, Any]:
        """The row's `RunRecord` fields by name (the dataclass itself is the writer's: ~3 ms to import)."""
        prepared, plan = self.prepared, self.prepared.plan
        result = outcome.result if outcome is not None else None
        return {
            "task_name": prepared.spec.name,
            "header": prepared.params.lute_config.db_header(),
            "parameters": prepared.params.task_values(),
            "task_status": status.value,
            "summary": summary_text(summary),
            "payload": payload_for_db(payload),
            "impl_schemas": str((result or {}).get("impl_schemas") or prepared.params.impl_schemas or ""),
            "valid": status == TaskStatus.COMPLETED,
            "env": plan.task_env,  # the DB keeps LUTE_*, SLURM_* and these names only; never a token
            "env_allowlist": (*prepared.site.env_allowlist, *prepared.spec.cls.env),
            "poll_interval": 0.0,
            "communicator_desc": COMMUNICATOR if prepared.request is not None else "pipes (binary)",
            "runtime": plan.runtime,
            "launcher": plan.launcher,
            "image": plan.image,
            "image_sha256": plan.image_sha256,
            "kernel_version": __version__,
            "argv": list(plan.argv),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pid_start": process_start_time(os.getpid()),  # with the pid: a reused pid is not this kernel
            "start": outcome.start if outcome is not None else self.started,
            "end": outcome.end if outcome is not None else None,
            "exit_code": outcome.exit_code if outcome is not None else None,
            "config_path": str(prepared.config.path.resolve()),
            "site": prepared.site.reference,  # a profile named by path is found again by its path
            "ranks": plan.ranks,
        }

    def begin_soon(self) -> None:
        """Hand the RUNNING row over now; `begin` waits for it (without a writer process: writes it then)."""
        if self._pending is None and self.row_id is None:
            self._pending = begin_run_soon(self.prepared.work_dir, self._fields(TaskStatus.RUNNING, None, "", None))

    def begin(self) -> None:
        """Write the RUNNING row (raises DatabaseError: the Task must then not start)."""
        self.begin_soon()
        pending, self._pending = self._pending, None
        assert pending is not None
        self.row_id = pending.row_id()

    def finish(self, outcome: ExecutionOutcome, summary: Any, payload: Any) -> Tuple[Optional[int], str]:
        """Write the final row; return ``(row id, "")``, or ``(None, why it was not recorded)``."""
        try:
            if self.row_id is None:  # failed before admission (a 'before' tasklet, a bad spawn)
                self.begin()
            assert self.row_id is not None
            finish_run(self.prepared.work_dir, self.row_id, self._fields(outcome.status, outcome, summary, payload))
        except (LuteError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}" if not isinstance(exc, LuteError) else str(exc)
        return self.row_id, ""
