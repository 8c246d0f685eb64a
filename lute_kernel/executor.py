"""The executor: spawns one plan, talks to its workers, enforces timeout and cancellation.

Owns the host-side loop. It waits on file descriptors only (the ZMQ sockets, a pidfd for process
exit, the output pipes, the cancel pipe) with the nearest deadline as the poll timeout: no fixed
sleeps. On timeout, cancellation or a missing MPI rank it signals the whole process group, waits a
grace period on the pidfd, then SIGKILLs the group; after any exit it kills stragglers and removes
the run directory. It does not touch the DB (``api`` records the outcome).
"""

from __future__ import annotations

import shutil
import signal
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Optional

from lute_kernel.cancel import CancelToken
from lute_kernel.events import EventSink, ignore_events
from lute_kernel.launch_session import ExecutionOutcome, ExecutionSettings, LaunchSession, signal_group
from lute_kernel.plan import LaunchPlan
from lute_kernel.task import TaskStatus

__all__ = ["ExecutionOutcome", "ExecutionSettings", "execute"]


def _exit_reason(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def execute(
    plan: LaunchPlan,
    request: Optional[Dict[str, Any]],
    settings: ExecutionSettings,
    *,
    on_event: EventSink = ignore_events,
    cancel: Optional[CancelToken] = None,
    on_started: Optional[Callable[[], None]] = None,
) -> ExecutionOutcome:
    """Run ``plan`` to the end; ``request`` is the params message for a worker (None for binaries)."""
    run = LaunchSession(plan, request, settings, on_event, cancel)
    try:
        proc = run.start()
    except BaseException:
        shutil.rmtree(run.run_dir, ignore_errors=True)
        raise
    if on_started is not None:
        on_started()
    deadline = time.monotonic() + settings.timeout_s
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if run.kill_at is not None and now >= run.kill_at:
                signal_group(proc.pid, signal.SIGKILL)
                run.kill_at = float("inf")
            if now >= deadline and run.kill_at is None:
                run.terminate(
                    proc.pid,
                    TaskStatus.TIMEDOUT,
                    signal.SIGTERM,
                    f"timed out after {settings.timeout_s:g} s",
                )
            run.check_ranks(proc.pid)
            wake = run.next_wake(deadline)
            timeout_ms = None if wake is None else max(0, int((wake - time.monotonic()) * 1000) + 1)
            for item, _ in run.poller.poll(timeout_ms):
                if run.server is not None and item is run.server.socket:
                    run.handle_messages()
                elif run.server is not None and item is run.server.monitor:
                    run.server.drain_monitor()
                elif cancel is not None and item == cancel.fileno():
                    run.poller.unregister(cancel.fileno())
                    signum = cancel.signum or signal.SIGTERM
                    run.terminate(
                        proc.pid,
                        TaskStatus.CANCELLED,
                        signum,
                        f"cancelled by {signal.Signals(signum).name}",
                    )
                elif item in run.pipes:
                    run.handle_pipe(item)
        run.outcome.exit_code = proc.returncode
        signal_group(proc.pid, signal.SIGKILL)  # nothing the Task started may outlive it
        run.wait_final_messages()
    finally:
        if proc.poll() is None:
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        run.close()
        run.outcome.end = datetime.now(timezone.utc)
    _settle_status(run.outcome, worker=request is not None, hello_seen=run.hello_seen)
    if (
        cancel is not None
        and cancel.cancelled
        and run.outcome.status not in (TaskStatus.COMPLETED, TaskStatus.TIMEDOUT)
    ):
        # Slurm's scancel signals the kernel and the step at once: ranks may vanish before the
        # cancel pipe is read. Whatever tore the run down, it ended because it was cancelled.
        signum = cancel.signum or signal.SIGTERM
        run.outcome.status, run.outcome.reason = TaskStatus.CANCELLED, f"cancelled by {signal.Signals(signum).name}"
    return run.outcome


def _settle_status(outcome: ExecutionOutcome, *, worker: bool, hello_seen: bool) -> None:
    if outcome.status != TaskStatus.RUNNING:  # decided already: timed out, cancelled, a rank missing
        return
    code = outcome.exit_code if outcome.exit_code is not None else -1
    if outcome.error is not None:
        outcome.status, outcome.reason = (
            TaskStatus.FAILED,
            f"{outcome.error.get('type')}: {outcome.error.get('message')}",
        )
    elif code == 0 and (not worker or outcome.result is not None):
        reported = (outcome.result or {}).get("task_status", TaskStatus.COMPLETED)
        outcome.status = TaskStatus(reported)
    else:
        outcome.status = TaskStatus.FAILED
        missing = "" if not worker or hello_seen else " before connecting to the kernel"
        outcome.reason = f"the Task {_exit_reason(code)}{missing}"
        if code == 0:
            outcome.reason = "the Task exited without reporting a result"
