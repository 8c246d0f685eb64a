"""One launch while it runs: the process, its pipes, the socket and what the ranks said.

Owns the state the executor loop updates (which ranks said hello and bye; what they report goes to
the run's ``RunState``), spawning the plan or adopting its early start (``early_launch``),
admission (the RUNNING row, before any Task code runs; for a worker while its container starts),
the rank checks that turn a missing rank into a teardown instead of a hang, terminating the process
group with a grace period, the bounded wait for messages still in flight after exit, and cleaning
up (escaped descendants, pipes, pidfd, socket, run directory). The loop itself is ``executor``'s.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Set

import zmq

from lute_kernel.cancel import CancelToken
from lute_kernel.descendants import run_ended, run_started, sweep
from lute_kernel.events import EventSink, RunEvent
from lute_kernel.execution import ExecutionOutcome, ExecutionSettings, signal_group
from lute_kernel.ipc.server import SOCKET_NAME, IpcServer
from lute_kernel.message_events import error_event, log_event, progress_event
from lute_kernel.output import OutputPipe
from lute_kernel.plan import LaunchPlan
from lute_kernel.run_dirs import clean_stale_run_dirs, make_run_dir, run_dir_name
from lute_kernel.run_state import signal_name
from lute_kernel.spawn import spawn
from lute_kernel.spawn_env import spawn_env
from lute_kernel.task import TaskStatus

if TYPE_CHECKING:
    from lute_kernel.early_launch import StartedLaunch

FINAL_MESSAGES_WAIT_S = 2.0
"""Upper bound on waiting, after exit, for messages still in flight from a worker that said hello."""


class LaunchSession:
    """State of one launch while it runs (one per execute() call: no global state)."""

    def __init__(
        self,
        plan: LaunchPlan,
        request: Optional[Dict[str, Any]],
        settings: ExecutionSettings,
        on_event: EventSink,
        cancel: Optional[CancelToken],
        admit: Optional[Callable[[], None]] = None,
        early: Optional[StartedLaunch] = None,
    ) -> None:
        self.plan, self.request, self.settings = plan, request, settings
        self.early = early
        self.on_event, self.cancel, self.admit = on_event, cancel, admit
        self.outcome = ExecutionOutcome()
        self.state = self.outcome.state
        self.state.worker = request is not None
        self.poller = zmq.Poller()
        root = Path(plan.run_dir).parent if plan.run_dir else (settings.run_root or Path(tempfile.gettempdir()))
        self.run_root = root
        # Planned (its path is in a container's bind argv) or made up here: private either way.
        if early is not None:  # made, with its private folders, when the launch started early
            early.adopted = True
            self.run_dir = Path(early.run_dir)
        else:
            path = Path(plan.run_dir) if plan.run_dir else root / run_dir_name()
            self.run_dir = make_run_dir(path)
            for private in plan.private_dirs:
                (self.run_dir / private).mkdir(mode=0o700)
        self.run_id = self.run_dir.name
        self.server: Optional[IpcServer] = None
        self.hellos: Set[int] = set()
        self.byes: Set[int] = set()
        self.admission: Optional[bool] = None
        """None until the admission step ran; then whether it succeeded (it runs once)."""
        self.kill_at: Optional[float] = None
        self.hello_deadline = time.monotonic() + settings.hello_timeout_s

    def sweep_stale_run_dirs(self) -> None:
        """Remove what dead kernels left in the run root, after the spawn (listing a shared /tmp takes ms)."""
        clean_stale_run_dirs(self.run_root)

    @property
    def hello_seen(self) -> bool:
        """True once a worker connected."""
        return bool(self.hellos)

    @property
    def bye_seen(self) -> bool:
        """True once every rank said bye."""
        return len(self.byes) >= self.settings.ranks

    def _admit(self) -> bool:
        """Run the admission step once (it records the RUNNING row); False when it failed."""
        if self.admission is None:
            self.admission = True
            if self.admit is not None:
                try:
                    self.admit()
                except Exception as exc:  # e.g. the DB cannot be written: the Task must not start
                    self.state.launch_failed(f"not started: {exc}")
                    self.admission = False
            self.outcome.timeline.mark("admitted")
        return self.admission

    def admit_worker(self) -> None:
        """Admit a worker's run now, while its container starts; refused: tear the launch down.

        Called by the executor right after the spawn, inside its clean-up: the RUNNING row is
        written while the image starts, and the parameters (so any Task code) still wait for it.
        """
        if self.request is not None and not self._admit():
            self.terminate(self.proc.pid, TaskStatus.FAILED, signal.SIGTERM, self.state.launch_failure or "")

    def start(self) -> Any:
        """Bind the socket (for a worker), spawn the plan, and register everything the loop waits on.

        A binary is admitted before it is spawned; a worker by :meth:`admit_worker` just after
        (the container starts while the RUNNING row is written), and its first rank gets the
        parameters only once admitted, so no Task code runs before the row exists.
        Returns None when a binary's admission failed (nothing was started).
        """
        if self.request is None and not self._admit():
            return None
        proc = self._adopt(self.early) if self.early is not None else self._spawn()
        self.state.launched()
        run_started(self.run_id, proc.pid)
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

    def _spawn(self) -> Any:
        """Bind the socket (for a worker) and spawn the plan with its run's variables."""
        worker = None
        if self.request is not None:
            self.server = IpcServer(
                self.run_dir,
                secrets.token_hex(16),
                max_bytes=self.settings.max_bytes,
                transport=self.settings.transport,
                tcp_host=self.settings.tcp_host,
            )
            inside = self.plan.ipc_endpoint if self.settings.transport == "ipc" else ""
            worker = {
                "endpoint": inside or self.server.endpoint,
                "token": self.server.token,
                "server_key": self.server.server_key,
                "max_bytes": str(self.settings.max_bytes),
            }
            self._register_server()
        env = spawn_env(self.plan.env, self.plan.task_env_prefix, self.run_id, worker)  # APPTAINERENV_: never argv
        self.outcome.timeline.mark("launch")
        proc = spawn(replace(self.plan, env=env))
        self.outcome.timeline.mark("spawned")
        return proc

    def _adopt(self, early: StartedLaunch) -> Any:
        """Take over a launch that started before validation (:mod:`lute_kernel.early_launch`): the same plan."""
        self.server = early.server
        self._register_server()
        for name, moment in early.marks.items():
            self.outcome.timeline.marks.setdefault(name, moment)
        self.outcome.timeline.mark("adopted")
        return early.proc

    def _register_server(self) -> None:
        assert self.server is not None
        self.poller.register(self.server.socket, zmq.POLLIN)
        self.poller.register(self.server.monitor, zmq.POLLIN)

    def handle_messages(self) -> int:
        """Handle one batch of waiting messages; return how many there were."""
        assert self.server is not None
        batch = self.server.receive_ready()
        for identity, message in batch:
            self.outcome.messages += 1
            body = message.body
            if message.kind == "hello":
                self.hellos.add(message.rank)
                self.state.worker_connected()
                self.outcome.timeline.mark("hello")
                if self._admit():
                    self.server.send(identity, "params", self.request or {})
                    self.outcome.timeline.mark("params")
                else:
                    self.terminate(self.proc.pid, TaskStatus.FAILED, signal.SIGTERM, self.state.launch_failure or "")
            elif message.kind == "log":
                self.on_event(log_event(body, message.rank))
            elif message.kind == "progress":
                self.on_event(progress_event(body, message.rank))
            elif message.kind == "result" and message.rank == 0:
                self.state.reported_result(body)
                self.outcome.timeline.mark("result")
            elif message.kind == "error":
                self.state.reported_error(body)
                self.on_event(error_event(body, message.rank))
            elif message.kind == "bye":
                self.byes.add(message.rank)
        return len(batch)

    def handle_pipe(self, fd: int) -> None:
        """Forward the complete lines readable on a pipe as events."""
        pipe = self.pipes[fd]
        for line in pipe.read_available():
            self.on_event(RunEvent(pipe.name, line))
        if pipe.closed:
            self.poller.unregister(fd)

    def terminate(self, pgid: int, status: TaskStatus, signum: int, reason: str) -> None:
        """Report the teardown to the run's state, signal the group once, arm the SIGKILL after the grace."""
        if self.kill_at is not None or not self.state.tore_down(status, reason):
            return
        self.on_event(RunEvent("status", f"{reason}: sending {signal_name(signum)} to the Task"))
        if self.server is not None:
            self.server.workers_stopping()
        signal_group(pgid, signum)
        self.kill_at = time.monotonic() + self.settings.grace_s

    def check_ranks(self, pgid: int) -> None:
        """Tear the step down when a rank is missing: never connected in time, or left without bye."""
        if self.server is None or self.kill_at is not None:
            return
        expected = self.settings.ranks
        if len(self.hellos) < expected and time.monotonic() >= self.hello_deadline:
            reason = f"only {len(self.hellos)} of {expected} ranks connected within {self.settings.hello_timeout_s:g} s"
            self.terminate(pgid, TaskStatus.FAILED, signal.SIGTERM, reason)
        elif expected > 1 and self.server.disconnected > len(self.byes):
            while self.handle_messages():  # a bye may be queued behind the disconnect we saw
                pass
            if self.server.disconnected > len(self.byes):
                missing = sorted(set(range(expected)) - self.byes)
                reason = f"a rank left without finishing (ranks not finished: {missing})"
                self.terminate(pgid, TaskStatus.FAILED, signal.SIGTERM, reason)

    def next_wake(self, deadline: float) -> Optional[float]:
        """Return when the loop must wake up at the latest (None: only on an event)."""
        times = [self.kill_at if self.kill_at is not None else deadline]
        if self.server is not None and self.kill_at is None and len(self.hellos) < self.settings.ranks:
            times.append(self.hello_deadline)
        wake = min(times)
        return None if wake == float("inf") else wake

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
        """Sweep escaped descendants, drain and close the pipes, close the pidfd and socket, remove the run dir."""
        if hasattr(self, "proc"):
            run_ended(self.run_id)
            swept = sweep(self.run_id)
            if swept:
                self.on_event(RunEvent("status", f"killed {swept} process(es) the Task left behind"))
            for pipe in self.pipes.values():
                for line in pipe.drain():
                    self.on_event(RunEvent(pipe.name, line))
            self.outcome.stderr_tail = list(self.stderr.tail)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
            os.close(self.pidfd)
        if self.server is not None:
            note = self.server.rejection_note()  # strangers on the socket: said once, never fatal
            if note:
                self.on_event(RunEvent("log", note, 0, "WARNING"))
            self.server.close(self.run_dir / SOCKET_NAME)
        shutil.rmtree(self.run_dir, ignore_errors=True)
