"""The executor: spawns one plan, talks to its workers, enforces timeout and cancellation.

Owns the host-side loop. It waits on file descriptors only (the ZMQ sockets, a pidfd for process
exit, the output pipes, the cancel pipe) with the nearest deadline as the poll timeout: no fixed
sleeps. On timeout, cancellation or a missing MPI rank it signals the whole process group, waits a
grace period on the pidfd, then SIGKILLs the group; after any exit it kills stragglers (the kernel is
a child subreaper, so escaped descendants are found too) and removes the run directory. It reports
what it learns to the run's ``RunState`` and never decides a status itself; it does not touch the
DB (``api`` records the outcome through the ``admit`` hook and afterwards).
"""

from __future__ import annotations

import signal
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

import zmq

from lute_kernel import deadman
from lute_kernel.cancel import CancelToken
from lute_kernel.descendants import become_subreaper, reaped
from lute_kernel.events import EventSink, ignore_events
from lute_kernel.execution import ExecutionOutcome, ExecutionSettings, signal_group
from lute_kernel.launch_session import LaunchSession
from lute_kernel.plan import LaunchPlan
from lute_kernel.run_state import signal_name
from lute_kernel.signal_wakeup import SignalWakeup
from lute_kernel.task import TaskStatus

if TYPE_CHECKING:
    from lute_kernel.early_launch import StartedLaunch

__all__ = ["ExecutionOutcome", "ExecutionSettings", "execute"]


MAX_POLL_MS = 60 * 60 * 1000
"""Longest single poll: deadlines further away are re-checked hourly (poll takes a C int)."""


def execute(
    plan: LaunchPlan,
    request: Optional[Dict[str, Any]],
    settings: ExecutionSettings,
    *,
    on_event: EventSink = ignore_events,
    cancel: Optional[CancelToken] = None,
    admit: Optional[Callable[[], None]] = None,
    early: Optional[StartedLaunch] = None,
) -> ExecutionOutcome:
    """Run ``plan`` to the end; ``request`` is the params message for a worker (None for binaries).

    ``admit`` runs once before any Task code may run (before a binary is spawned; before the first
    worker gets its parameters): it records the RUNNING row. If it raises, the Task never starts.
    The outcome's state is not final: the caller may still report an ``after`` tasklet's failure,
    then calls ``outcome.state.finish()``. ``early``: this very launch, already started before
    validation (:mod:`lute_kernel.early_launch`); it is adopted instead of spawned.
    """
    become_subreaper()  # a Task's setsid'd or double-forked descendant comes back to us, not to init
    run = LaunchSession(plan, request, settings, on_event, cancel, admit, early)
    try:
        proc = run.start()
    except BaseException:
        run.close()
        raise
    if proc is None:  # not admitted: nothing was started
        run.close()
        run.outcome.end = datetime.now(timezone.utc)
        return run.outcome
    deadline = time.monotonic() + settings.timeout_s
    wakeup = SignalWakeup.install()  # after the spawn: a forked worker must not inherit it
    if wakeup is not None:
        run.poller.register(wakeup.fd, zmq.POLLIN)
    try:
        run.admit_worker()  # the RUNNING row, written while the container starts
        run.sweep_stale_run_dirs()
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
            timeout_ms = MAX_POLL_MS if timeout_ms is None else min(timeout_ms, MAX_POLL_MS)
            for item, _ in run.poller.poll(timeout_ms):
                if run.server is not None and item is run.server.socket:
                    run.handle_messages()
                elif run.server is not None and item is run.server.monitor:
                    run.server.drain_monitor()
                elif cancel is not None and item == cancel.fileno():
                    run.poller.unregister(cancel.fileno())
                    signum = cancel.signum or signal.SIGTERM
                    run.state.cancel_requested(signum)
                    run.terminate(proc.pid, TaskStatus.CANCELLED, signum, f"cancelled by {signal_name(signum)}")
                elif item in run.pipes:
                    run.handle_pipe(item)
                elif wakeup is not None and item == wakeup.fd:
                    wakeup.drain()  # a signal arrived (its handler has run): the cancel pipe says the rest
        run.state.process_exited(proc.returncode)
        run.outcome.timeline.mark("exited")
        signal_group(proc.pid, signal.SIGKILL)  # nothing the Task started may outlive it
        run.wait_final_messages()
    finally:
        if wakeup is not None:
            run.poller.unregister(wakeup.fd)
            wakeup.uninstall()
        if proc.poll() is None:
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        reaped(proc.pid)
        deadman.release(proc.pid)
        run.close()
        run.outcome.end = datetime.now(timezone.utc)
        run.outcome.timeline.mark("closed")
    if cancel is not None and cancel.cancelled:
        # Slurm's scancel signals the kernel and the step at once: ranks may vanish before the
        # cancel pipe is read. The state decides whether the cancel or the Task's own end wins.
        run.state.cancel_requested(cancel.signum or signal.SIGTERM)
    return run.outcome
