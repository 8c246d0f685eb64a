"""The local backend's node server: a single-threaded process that forks one kernel per step.

Why: the kernel starts a local-runtime worker by forking itself (``lute_kernel.forked``), which is
only safe from a process with one thread; a Prefect flow keeps several. The node server is started
before Prefect is imported (forked from the CLI) or, in a process that already has threads (a flow
run started by a worker), exec'd as ``python -m flows.backends.node_server FD``. It imports the
kernel and discovers the Tasks once; each step runs in a child that is an ordinary kernel run
— ``lute_kernel.api.prepare`` then ``run_prepared``, with the kernel's own signal handling,
cancellation, timeouts and recording — and streams that run's events and outcome as JSON lines
to the flow. That child is forked before its step is asked for (a spare,
``flows.backends.step_kernel``): the next one is forked while the current step's container starts,
and rehearses that step's validation while it waits for its own.
It never runs a Task itself and never writes the DB.

Protocol (no pickle): a ``SOCK_SEQPACKET`` control socket carries JSON requests — ``run`` with the
step's request and, attached (SCM_RIGHTS), the socket its child writes its lines to; ``cancel`` with
a signal for one run; ``expect`` with the step the flow will run next, passed on to the spare
that will run it, which prepares it and starts its launch while the current step runs
(``flows.backends.step_kernel.Expected``, ADR 0015) — and ``started``/``error`` replies. When
the flow's end of the control socket closes (the flow ended or died), every child still running
is sent SIGTERM (each records its run CANCELLED) and the server exits once they have.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import threading
import time
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Tuple

from flows.backends.step_kernel import Spare, reap

_MAX_MESSAGE = 1 << 20


def _serve(control: socket.socket) -> int:  # pragma: no cover - runs in the server process, tested end to end
    """Serve requests until the flow closes the control socket; return the exit code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the flow decides about cancellation, not the terminal
    signal.signal(signal.SIGTERM, lambda *_: None)  # wakes poll; EOF of the control socket ends us
    from lute_kernel import api, executor, worker  # noqa: F401  - imported once, for every child
    from lute_kernel.registry import discover

    _import_what_runs_need()

    from lute_kernel import parse_memo

    parse_memo.enable()  # each spare parses the config and site profile in its rehearsal, its step reuses them
    registry = discover()
    spare: Optional[Spare] = Spare.fork(registry, [control.fileno()])
    runs: Dict[str, int] = {}  # run id -> pid, while the child runs
    pidfds: Dict[int, Tuple[str, int]] = {}
    poller = select.poll()
    poller.register(control.fileno(), select.POLLIN)
    closing = False
    later: Optional[Tuple[float, Any]] = None  # (when, the step just handed on): fork the next spare then
    expected: Optional[bytes] = None  # the flow's next step, for the spare forked next
    while not closing or pidfds:
        events = poller.poll(None if later is None else max(0.0, later[0] - time.monotonic()) * 1000)
        if later is not None and (closing or time.monotonic() >= later[0]):
            if not closing and spare is None:
                spare = _fork_spare(registry, [control.fileno(), *pidfds], later[1])
                if spare is not None and expected is not None:
                    spare.expect(expected)
                    expected = None
            later = None
        for fd, _ in events:
            if fd in pidfds:
                run_id, pid = pidfds.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                os.waitpid(pid, 0)
                runs.pop(run_id, None)
                continue
            try:
                message, fds, _, _ = socket.recv_fds(control, _MAX_MESSAGE, 2)
            except OSError:
                message, fds = b"", []
            if not message:  # the flow is gone: cancel what runs, then leave
                closing = True
                poller.unregister(control.fileno())
                for pid in runs.values():
                    _signal(pid, signal.SIGTERM)
                continue
            request = json.loads(message)
            if request.get("op") == "cancel":
                target = runs.get(str(request.get("id")))
                if target is not None:
                    _signal(target, int(request.get("signum", signal.SIGTERM)))
                continue
            if request.get("op") == "expect":  # sent after a step started: the spare waiting now runs the next
                if spare is not None and later is None:
                    spare.expect(message)
                else:
                    expected = message  # its spare is forked in a moment
                continue
            run_id = str(request.get("id"))
            if not fds:
                control.send(json.dumps({"op": "error", "id": run_id, "message": "no output socket"}).encode())
                continue
            pid = _hand_to_spare(spare, message, fds, lambda: Spare.fork(registry, [control.fileno(), *pidfds]))
            spare = None
            for fd_ in fds:
                os.close(fd_)
            pidfd = os.pidfd_open(pid)
            pidfds[pidfd] = (run_id, pid)
            runs[run_id] = pid
            poller.register(pidfd, select.POLLIN)
            control.send(json.dumps({"op": "started", "id": run_id, "pid": pid}).encode())
            later = (time.monotonic() + SPARE_DELAY_S, request.get("request"))
        if closing and spare is not None:
            spare.dismiss()
            spare = None
    return 0


SPARE_DELAY_S = 0.03
"""How long after a step is handed on the server waits to fork the next spare: the fork and the
spare's rehearsal (~10-20 ms of CPU) then overlap the step's container start, not its validation
and launch."""


def _fork_spare(registry: Any, inherited: List[int], warm_up: Any) -> Optional[Spare]:
    try:
        return Spare.fork(registry, inherited, warm_up if isinstance(warm_up, dict) else None)
    except OSError:
        return None  # no process to spare now: the next step forks its own


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)  # not reaped yet (only we reap it), so the pid is still that child's
    except ProcessLookupError:
        pass


WARM_MODULES = (
    "lute_kernel.db.records",  # peewee, sqlite3: the RUNNING row and the recording
    "lute_kernel.db.writer",
    "lute_kernel.db.writer_process",  # the recorder calls the writer through it (here: in this process)
    "lute_kernel.db.recordable",
    "lute_kernel.db.liveness",
    "lute_kernel.images.lookup",  # --runtime apptainer: finding the image and its sandbox
    "lute_kernel.images.sandbox",
    "lute_kernel.summaries",
    "lute_kernel.early_launch",  # a spare told its step starts that step's launch
)
"""What a step's kernel imports lazily (a one-off ``run`` pays them only when it needs them): the
server imports them once, so no forked step pays them again (~50-80 ms each on this machine)."""


def _import_what_runs_need() -> None:
    import importlib

    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # a step that needs it reports the error itself
            pass


def _hand_to_spare(spare: Optional[Spare], message: bytes, fds: List[int], fork: Callable[[], Spare]) -> int:
    """Give a run's request to the spare (a fresh one if it is gone or missing); return its pid."""
    for _ in range(2):
        if spare is None:
            spare = fork()
        if spare.hand(message, fds):
            return spare.pid
        reap(spare.pid)  # it died before its request (killed from outside): its successor takes it
        spare = None
    raise RuntimeError("no spare kernel would take the step")


class NodeServer:
    """The flow's handle on its node server: start a step's kernel, cancel it, close."""

    def __init__(self, control: socket.socket, pid: int, process: Optional[Any] = None) -> None:
        self._control = control
        self.pid = pid
        self._process = process
        self._lock = threading.Lock()
        self._next = 0

    @classmethod
    def fork(cls) -> NodeServer:
        """Fork the server from this process (which must have one thread: call before importing Prefect)."""
        if threading.active_count() != 1:
            return cls.spawn()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        from lute_kernel import descendants

        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        with descendants.spawning():  # a child started on purpose: never swept as a run's orphan
            pid = os.fork()
            if pid:
                descendants.started(pid)
        if pid == 0:  # pragma: no cover - the server process
            code = 1
            try:
                ours.close()
                os.setsid()  # Ctrl-C reaches the flow, which cancels its steps itself
                devnull = os.open(os.devnull, os.O_RDWR)
                os.dup2(devnull, 0)
                os.dup2(devnull, 1)
                code = _serve(theirs)
            finally:
                os._exit(code)
        theirs.close()
        return cls(ours, pid)

    @classmethod
    def spawn(cls) -> NodeServer:
        """Start the server as a new interpreter (safe from a process with threads)."""
        import subprocess

        from lute_kernel.spawn import start_command

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = start_command(
            [sys.executable, "-m", "flows.backends.node_server", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdout=subprocess.DEVNULL,
            stderr=None,
            env=dict(os.environ),
        )
        theirs.close()
        return cls(ours, process.pid, process)

    def start(self, request: Mapping[str, Any]) -> Tuple[str, IO[bytes], int]:
        """Start one step's kernel; return (run id, the stream of its JSON lines, its pid)."""
        read_end, write_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with self._lock:
            self._next += 1
            run_id = str(self._next)
            message = json.dumps({"op": "run", "id": run_id, "request": dict(request)}).encode()
            try:
                socket.send_fds(self._control, [message], [write_end.fileno()])
                reply = json.loads(self._control.recv(_MAX_MESSAGE) or b"{}")
            finally:
                write_end.close()
        if reply.get("op") != "started":
            read_end.close()
            raise RuntimeError(f"the node server did not start the step: {reply.get('message', reply)}")
        stream = read_end.makefile("rb")
        read_end.close()  # the stream holds the socket open until it is closed itself
        return run_id, stream, int(reply["pid"])

    def expect(self, request: Mapping[str, Any]) -> None:
        """Say which step the flow will run next (call it after a step was started): its spare starts its launch.

        A guess: when the next step asked for is another, that spare kills what it started and runs it as always.
        """
        with self._lock:
            try:
                self._control.send(json.dumps({"op": "expect", "request": dict(request)}).encode())
            except OSError:
                pass

    def cancel(self, run_id: str, signum: int = signal.SIGTERM) -> None:
        """Send ``signum`` to a run's kernel (it cancels its Task and records the run CANCELLED)."""
        with self._lock:
            try:
                self._control.send(json.dumps({"op": "cancel", "id": run_id, "signum": signum}).encode())
            except OSError:
                pass  # the server is gone, and with it every run

    def close(self, wait: bool = True) -> None:
        """Close the control socket: the server cancels what still runs and exits; reap it."""
        self._control.close()
        if not wait:
            return
        from lute_kernel import descendants

        if self._process is not None:
            self._process.wait()
        else:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
        descendants.reaped(self.pid)


def run_lines(stream: IO[bytes], on_line: Callable[[Dict[str, Any]], None]) -> Optional[Dict[str, Any]]:
    """Read a run's JSON lines; hand each event on; return the final line (None: the kernel died first).

    The final line is the child's last act (its run recorded, its processes reaped): the step ends
    there, not at the end of the stream, which comes only once the forked child has finished
    exiting (~5 ms of unmapping its copy of the node server; the server reaps it).
    """
    for raw in stream:
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        if data.get("kind") != "event":
            return data
        on_line(data)
    return None


if __name__ == "__main__":  # pragma: no cover - the exec'd server
    sys.exit(_serve(socket.socket(fileno=int(sys.argv[1]))))
