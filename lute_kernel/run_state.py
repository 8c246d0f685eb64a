"""The one owner of a run's status: PENDING → RUNNING → a final state that never changes.

Every module that learns something about a run reports it here — the executor that the process
exited or was torn down, the session that a worker sent its result or an error, the cancel token
that the user asked to stop, the run path that an ``after`` tasklet failed — and none of them
assigns a status. ``verdict()`` derives the status from those facts (pure, repeatable);
``finish()`` fixes it once. A transition out of a final state is refused (``StateError``): a
final status is what the DB row says forever.

Precedence, written down once: a teardown the kernel started (timeout, cancellation, a missing
rank) names the status; a cancellation wins over a failure that raced it (``scancel`` signals the
kernel and the ranks at once, and ranks may vanish before the cancel pipe is read); otherwise the
worker's error, then the exit code and the result decide.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from lute_kernel.task import TaskStatus

FINAL_STATES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.TIMEDOUT, TaskStatus.CANCELLED})


class StateError(RuntimeError):
    """A transition the state machine forbids (a kernel bug, never the user's input)."""


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    if 128 < code <= 128 + 64:  # a shell's or a container runtime's way of saying "killed by N"
        return f"exited with code {code} (killed by {signal_name(code - 128)})"
    return f"exited with code {code}"


def signal_name(signum: int) -> str:
    """Return ``SIGTERM`` for 15 (or ``signal 64`` for a number without a name)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@dataclass
class RunState:
    """The facts known about one run, and the status they imply."""

    status: TaskStatus = TaskStatus.PENDING
    reason: str = ""
    worker: bool = True
    teardown: Optional[Tuple[TaskStatus, str]] = None
    cancel_signum: Optional[int] = None
    exit_code: Optional[int] = None
    launch_failure: Optional[str] = None
    after_failure: Optional[str] = None
    result: Optional[Dict[str, Any]] = None
    error: Optional[Dict[str, Any]] = None
    hello_seen: bool = False

    @property
    def final(self) -> bool:
        """True once ``finish()`` fixed the status."""
        return self.status in FINAL_STATES

    def _open(self) -> None:
        if self.final:
            raise StateError(f"the run is {self.status.value} already; its state cannot change")

    def launched(self) -> None:
        """The Task's process exists: PENDING → RUNNING."""
        self._open()
        if self.status != TaskStatus.PENDING:
            raise StateError(f"a run is launched once (it is {self.status.value})")
        self.status = TaskStatus.RUNNING

    def tore_down(self, status: TaskStatus, reason: str) -> bool:
        """The kernel started a teardown (timeout, cancel, missing rank); the first one names the status.

        Returns:
            True when this was the first teardown (the caller signals the Task then).
        """
        self._open()
        if self.teardown is not None:
            return False
        self.teardown = (status, reason)
        return True

    def cancel_requested(self, signum: int) -> None:
        """The user (or Slurm, or a flow) asked the run to stop."""
        self._open()
        if self.cancel_signum is None:
            self.cancel_signum = signum

    def process_exited(self, code: int) -> None:
        """The launched process ended with ``code`` (negative: killed by that signal)."""
        self._open()
        self.exit_code = code

    def launch_failed(self, reason: str) -> None:
        """The process could not be started, or a ``before`` tasklet failed."""
        self._open()
        self.launch_failure = reason

    def reported_result(self, body: Dict[str, Any]) -> None:
        """Rank 0 sent its result."""
        self._open()
        self.result = body

    def reported_error(self, body: Dict[str, Any]) -> None:
        """A rank reported an exception (the first one is kept: it is the cause)."""
        self._open()
        if self.error is None:
            self.error = body

    def worker_connected(self) -> None:
        """A worker said hello with this run's token."""
        self._open()
        self.hello_seen = True

    def after_tasklet_failed(self, reason: str) -> None:
        """An ``after`` tasklet failed: a completed run becomes a failed one."""
        self._open()
        self.after_failure = reason

    def verdict(self) -> Tuple[TaskStatus, str]:
        """Return the status and reason the facts imply (pure: changes nothing)."""
        if self.final:
            return self.status, self.reason
        if self.launch_failure is not None:
            return TaskStatus.FAILED, self.launch_failure
        timed_out = self.teardown is not None and self.teardown[0] == TaskStatus.TIMEDOUT
        if self.cancel_signum is not None and not timed_out and not self._completed_cleanly():
            return TaskStatus.CANCELLED, f"cancelled by {signal_name(self.cancel_signum)}"
        if self.teardown is not None:
            return self.teardown
        status, reason = self._from_exit()
        if status == TaskStatus.COMPLETED and self.after_failure is not None:
            return TaskStatus.FAILED, self.after_failure
        return status, reason

    def _completed_cleanly(self) -> bool:
        # A Task that finished and reported before the cancel arrived stays COMPLETED.
        return self.teardown is None and self._from_exit()[0] == TaskStatus.COMPLETED

    def _from_exit(self) -> Tuple[TaskStatus, str]:
        code = self.exit_code if self.exit_code is not None else -1
        if self.error is not None:
            return TaskStatus.FAILED, f"{self.error.get('type')}: {self.error.get('message')}"
        if code == 0 and (not self.worker or self.result is not None):
            reported = (self.result or {}).get("task_status", TaskStatus.COMPLETED.value)
            try:
                status = TaskStatus(reported)
            except ValueError:
                return TaskStatus.FAILED, f"the Task reported an unknown status {str(reported)[:40]!r}"
            if status not in FINAL_STATES:
                status = TaskStatus.COMPLETED
            return status, ""
        if code == 0:
            return TaskStatus.FAILED, "the Task exited without reporting a result"
        missing = "" if not self.worker or self.hello_seen else " before connecting to the kernel"
        return TaskStatus.FAILED, f"the Task {_exit_reason(code)}{missing}"

    def finish(self) -> TaskStatus:
        """Fix the verdict as the final status (once) and return it."""
        self._open()
        self.status, self.reason = self.verdict()
        return self.status
