"""The executor: spawns one plan, talks to its worker, enforces timeout and cancellation.

Owns the host-side loop. It waits on file descriptors only (the ZMQ sockets, a pidfd for process
exit, the output pipes, the cancel pipe) with the deadline as the poll timeout: no fixed sleeps.
On timeout or cancellation it signals the whole process group, waits a grace period on the pidfd,
then SIGKILLs the group; after any exit it kills stragglers and removes the run directory.
It does not touch the DB (``api`` records the outcome).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import zmq

from lute_kernel.cancel import CancelToken
from lute_kernel.events import EventSink, RunEvent, ignore_events
from lute_kernel.ipc.protocol import DEFAULT_MAX_BYTES
from lute_kernel.ipc.server import SOCKET_NAME, IpcServer
from lute_kernel.output import OutputPipe
from lute_kernel.plan import LaunchPlan
from lute_kernel.spawn import spawn
from lute_kernel.task import TaskStatus

FINAL_MESSAGES_WAIT_S = 2.0
"""Upper bound on waiting, after exit, for messages still in flight from a worker that said hello."""


@dataclass
class ExecutionOutcome:
    """How one launch ended."""

    status: TaskStatus
    exit_code: Optional[int]
    reason: str = ""
    result: Optional[Dict[str, Any]] = None
    error: Optional[Dict[str, Any]] = None
    stderr_tail: List[str] = field(default_factory=list)
    start: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    end: Optional[datetime] = None
    messages: int = 0


@dataclass(frozen=True)
class ExecutionSettings:
    """Limits of one launch."""

    timeout_s: float
    grace_s: float = 10.0
    run_root: Optional[Path] = None
    max_bytes: int = DEFAULT_MAX_BYTES


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


class _Run:
    """State of one launch while it runs (one per execute() call: no global state)."""

    def __init__(
        self,
        plan: LaunchPlan,
        request: Optional[Dict[str, Any]],
        settings: ExecutionSettings,
        on_event: EventSink,
        cancel: Optional[CancelToken],
    ) -> None:
        self.plan, self.request, self.settings = plan, request, settings
        self.on_event, self.cancel = on_event, cancel
        self.outcome = ExecutionOutcome(status=TaskStatus.RUNNING, exit_code=None)
        self.poller = zmq.Poller()
        if plan.run_dir:  # planned (its path is in a container's bind argv): made here, private
            self.run_dir = Path(plan.run_dir)
            self.run_dir.mkdir(mode=0o700)
        else:
            self.run_dir = Path(tempfile.mkdtemp(prefix="lute-", dir=settings.run_root))
        self.server: Optional[IpcServer] = None
        self.hello_seen = False
        self.bye_seen = False
        self.kill_at: Optional[float] = None

    def start(self) -> Any:
        env = dict(self.plan.env)
        if self.request is not None:
            self.server = IpcServer(self.run_dir, secrets.token_hex(16), max_bytes=self.settings.max_bytes)
            prefix = self.plan.task_env_prefix  # e.g. APPTAINERENV_: reaches the Task, never argv
            env[f"{prefix}LUTE_IPC_ENDPOINT"] = self.plan.ipc_endpoint or self.server.endpoint
            env[f"{prefix}LUTE_IPC_TOKEN"] = self.server.token
            # The worker then fails at send time, with advice, rather than the kernel at receive time.
            env[f"{prefix}LUTE_IPC_MAX_BYTES"] = str(self.settings.max_bytes)
            self.poller.register(self.server.socket, zmq.POLLIN)
            self.poller.register(self.server.monitor, zmq.POLLIN)
        proc = spawn(replace(self.plan, env=env))
        assert proc.stdout is not None and proc.stderr is not None
        self.stdout, self.stderr = (
            OutputPipe(proc.stdout.fileno(), "stdout"),
            OutputPipe(proc.stderr.fileno(), "stderr"),
        )
        self.pipes = {pipe.fd: pipe for pipe in (self.stdout, self.stderr)}
        self.proc = proc
        for fd in self.pipes:
            self.poller.register(fd, zmq.POLLIN)
        self.pidfd = os.pidfd_open(proc.pid)
        self.poller.register(self.pidfd, zmq.POLLIN)
        if self.cancel is not None:
            self.poller.register(self.cancel.fileno(), zmq.POLLIN)
        return proc

    def handle_messages(self) -> int:
        """Handle one batch of waiting messages; return how many there were."""
        assert self.server is not None
        batch = self.server.receive_ready()
        for identity, message in batch:
            self.outcome.messages += 1
            body = message.body
            if message.kind == "hello":
                self.hello_seen = True
                self.server.send(identity, "params", self.request or {})
            elif message.kind == "log":
                self.on_event(
                    RunEvent(
                        "log",
                        str(body.get("message", "")),
                        message.rank,
                        str(body.get("level", "INFO")),
                    )
                )
            elif message.kind == "progress":
                self.on_event(RunEvent("progress", _progress_text(body), message.rank, data=body.get("data")))
            elif message.kind == "result" and message.rank == 0:
                self.outcome.result = body
            elif message.kind == "error":
                self.outcome.error = body
                self.on_event(RunEvent("log", f"{body.get('type')}: {body.get('message')}", message.rank, "ERROR"))
            elif message.kind == "bye":
                self.bye_seen = True
        return len(batch)

    def handle_pipe(self, fd: int) -> None:
        pipe = self.pipes[fd]
        for line in pipe.read_available():
            self.on_event(RunEvent(pipe.name, line))
        if pipe.closed:
            self.poller.unregister(fd)

    def terminate(self, pgid: int, status: TaskStatus, signum: int, reason: str) -> None:
        if self.kill_at is not None:
            return
        self.outcome.status, self.outcome.reason = status, reason
        self.on_event(RunEvent("status", f"{reason}: sending {signal.Signals(signum).name} to the Task"))
        _signal_group(pgid, signum)
        self.kill_at = time.monotonic() + self.settings.grace_s

    def wait_final_messages(self) -> None:
        """After exit: collect what a worker sent just before it went (bounded; stops at bye/disconnect)."""
        if self.server is None or not self.hello_seen:
            return
        limit = time.monotonic() + FINAL_MESSAGES_WAIT_S
        poller = zmq.Poller()
        poller.register(self.server.socket, zmq.POLLIN)
        poller.register(self.server.monitor, zmq.POLLIN)
        while True:
            self.server.drain_monitor()  # first: messages read before a disconnect are queued by now
            while self.handle_messages():
                pass
            if self.bye_seen or self.server.all_disconnected():
                return
            remaining = limit - time.monotonic()
            if remaining <= 0 or not poller.poll(int(remaining * 1000) + 1):
                return

    def close(self) -> None:
        for pipe in self.pipes.values():
            for line in pipe.drain():
                self.on_event(RunEvent(pipe.name, line))
        self.outcome.stderr_tail = list(self.stderr.tail)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        os.close(self.pidfd)
        if self.server is not None:
            self.server.close(self.run_dir / SOCKET_NAME)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _progress_text(body: Dict[str, Any]) -> str:
    total = body.get("total")
    count = f"{body.get('done')}/{total}" if total is not None else f"{body.get('done')}"
    return f"[{count}] {body.get('message', '')}".rstrip()


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
    run = _Run(plan, request, settings, on_event, cancel)
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
                _signal_group(proc.pid, signal.SIGKILL)
                run.kill_at = float("inf")
            if now >= deadline and run.kill_at is None:
                run.terminate(
                    proc.pid,
                    TaskStatus.TIMEDOUT,
                    signal.SIGTERM,
                    f"timed out after {settings.timeout_s:g} s",
                )
            wake = min(deadline if run.kill_at is None else run.kill_at, float("inf"))
            timeout_ms = None if wake == float("inf") else max(0, int((wake - time.monotonic()) * 1000) + 1)
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
        _signal_group(proc.pid, signal.SIGKILL)  # nothing the Task started may outlive it
        run.wait_final_messages()
    finally:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        run.close()
        run.outcome.end = datetime.now(timezone.utc)
    _settle_status(run.outcome, worker=request is not None, hello_seen=run.hello_seen)
    return run.outcome


def _settle_status(outcome: ExecutionOutcome, *, worker: bool, hello_seen: bool) -> None:
    if outcome.status in (TaskStatus.TIMEDOUT, TaskStatus.CANCELLED):
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
