"""Recording a finished run: its DB row, its eLog run parameters, its failure summary.

Owns turning a run's outcome into what is kept: the ``RunRecord`` (parameters, result, provenance)
written through ``lute_kernel.db`` (the one writer is the kernel's run path, never a Task or the
worker), the dict summary posted to the eLog when the site has one, and the one-line summary of a
failure. The DB layer is imported in the background while the Task runs (``preload_recorder``).
"""

from __future__ import annotations

import importlib
import socket
import threading
from typing import TYPE_CHECKING, Any

from lute_kernel import __version__
from lute_kernel.events import EventSink, RunEvent
from lute_kernel.executor import ExecutionOutcome
from lute_kernel.summaries import payload_for_db, summary_dict, summary_text
from lute_kernel.task import TaskStatus

if TYPE_CHECKING:
    from lute_kernel.api import PreparedRun

COMMUNICATOR = "zmq ipc, json frames v1"


def preload_recorder() -> None:
    """Import the DB layer in the background while the Task runs: it is needed only afterwards.

    Started after the Task's process exists, never before a fork (a child must not inherit a
    half-held import lock).
    """
    threading.Thread(target=importlib.import_module, args=("lute_kernel.db",), daemon=True).start()


def failure_summary(outcome: ExecutionOutcome) -> str:
    """Return why a run failed: the reason, the exception's last line, or the stderr tail."""
    parts = [outcome.reason]
    if outcome.error and outcome.error.get("traceback"):
        parts.append(str(outcome.error["traceback"]).strip().splitlines()[-1])
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


def record(prepared: PreparedRun, outcome: ExecutionOutcome, summary: Any, payload: Any) -> int:
    """Write the run's row (whatever happened) and return its id."""
    from lute_kernel.db import RunRecord, record_run  # imported while the Task runs, not before it starts

    plan = prepared.plan
    return record_run(
        prepared.work_dir,
        RunRecord(
            task_name=prepared.spec.name,
            header=prepared.params.lute_config.db_header(),
            parameters=prepared.params.task_values(),
            task_status=outcome.status.value,
            summary=summary_text(summary),
            payload=payload_for_db(payload),
            impl_schemas=str((outcome.result or {}).get("impl_schemas") or prepared.params.impl_schemas or ""),
            valid=outcome.status == TaskStatus.COMPLETED,
            env=plan.env,
            poll_interval=0.0,
            communicator_desc=COMMUNICATOR if prepared.request is not None else "pipes (binary)",
            runtime=plan.runtime,
            launcher=plan.launcher,
            image=plan.image,
            image_sha256=plan.image_sha256,
            kernel_version=__version__,
            argv=list(plan.argv),
            host=socket.gethostname(),
            start=outcome.start,
            end=outcome.end,
            exit_code=outcome.exit_code,
            config_path=str(prepared.config.path.resolve()),
            site=prepared.site.reference,  # a profile named by path is found again by its path
            ranks=plan.ranks,
        ),
    )
