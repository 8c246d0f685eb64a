"""A step's kernel, forked by the node server before its step is asked for: the spare.

Why: what every step's kernel does before it knows its step — the fork of the node server (~5 ms:
its page tables) and of the kernel's dead man's companion (``lute_kernel.deadman``, ~2-3 ms) —
was on every step's path. The node server keeps one spare forked ahead; a ``run`` request goes to
the spare, and the next spare is forked while that step's container starts (``SPARE_DELAY_S``
after the request: its fork then does not slow the step's validation and launch). While it waits,
a spare rehearses the step before its own (`rehearse`: validation only), so its own step finds
the Task imported, the config and site parsed and its memory its own (a flow step's validation
~13-17 → ~2.5 ms here).

A spare waits for one request on its own ``SOCK_SEQPACKET`` channel (the step's request as JSON,
its output socket attached) and is then an ordinary kernel run: ``lute_kernel.api.prepare``, then
``run_prepared``, writing its events and outcome as JSON lines. A signal while it waits is kept (the
run is then cancelled before launch); end-of-file on the channel (the flow ended unused) ends it.
Owns the spare's side and the server's handle on it. Must not run a Task itself, write the DB (its
kernel does, as any run's), or touch the server's control socket.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
from typing import Any, Dict, Iterable, List, Optional

_MAX_MESSAGE = 1 << 20
_CANCEL_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Spare:
    """The node server's handle on one spare kernel: hand it a request once, or dismiss it."""

    def __init__(self, pid: int, channel: socket.socket) -> None:
        self.pid = pid
        self._channel = channel

    @classmethod
    def fork(cls, registry: Any, inherited: Iterable[int], warm_up: Optional[Dict[str, Any]] = None) -> Spare:
        """Fork a spare; ``inherited``: the server's descriptors it must not keep (its control socket, pidfds).

        ``warm_up``: the step request before it, which the spare prepares while it waits (`rehearse`).
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Signals wait until the spare has its own handlers: a cancel sent right after its request
        # is handed on must not meet the server's handlers, inherited over the fork.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _CANCEL_SIGNALS)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the spare, tested through the node server
            code = 1
            try:
                ours.close()
                for fd in inherited:
                    os.close(fd)
                code = _wait_then_run(theirs, registry, previous, warm_up)
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        theirs.close()
        return cls(pid, ours)

    def hand(self, message: bytes, fds: List[int]) -> bool:
        """Give the spare its request (``message``: the server's ``run`` request); False when it is gone."""
        try:
            socket.send_fds(self._channel, [message], fds)
        except OSError:
            return False
        finally:
            self._channel.close()
        return True

    def expect(self, message: bytes) -> None:
        """Tell the spare which step comes next (the server's ``expect`` message): it starts that step's launch."""
        try:
            self._channel.send(message)
        except OSError:
            pass  # gone: its successor is forked when a step needs it

    def dismiss(self) -> None:
        """End an unused spare (its channel's end-of-file) and reap it."""
        self._channel.close()
        reap(self.pid)


def reap(pid: int) -> None:
    """Wait for the server's child ``pid`` (a spare, or a spare whose request could not be handed on)."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _wait_then_run(
    channel: socket.socket, registry: Any, mask: Iterable[int], warm_up: Optional[Dict[str, Any]]
) -> int:  # pragma: no cover
    from lute_kernel import deadman
    from lute_kernel.cancel import CancelToken

    cancel = CancelToken()
    for signum in _CANCEL_SIGNALS:
        signal.signal(signum, lambda s, _f: cancel.cancel(s))
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    deadman.prepare()
    if warm_up is not None and not select.select([channel], [], [], 0)[0]:  # its step is not here yet
        rehearse(warm_up, registry)
    expected: Optional[Expected] = None
    try:
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(channel, _MAX_MESSAGE, 2)
            except OSError:
                message, fds = b"", []
            body = json.loads(message) if message else {}
            if fds or body.get("op") != "expect" or not isinstance(body.get("request"), dict):
                break
            if expected is not None:
                expected.discard()
            expected = Expected.start(body["request"], registry)  # the flow's next step, started now
        channel.close()
        if not message or not fds:  # the flow ended before this spare was needed
            for fd in fds:
                os.close(fd)
            return 0
        request = body["request"]
        early = expected.started if expected is not None and expected.request == request else None
        return run_step(request, fds[0], registry, cancel, early=early)
    finally:
        if expected is not None:
            expected.discard()  # not its step, or the step ended: nothing started for it outlives the spare


class Expected:
    """The step a spare was told comes next, prepared and its launch started (``early_launch.start_plan``)."""

    def __init__(self, request: Dict[str, Any], started: Any) -> None:
        self.request, self.started = request, started

    @classmethod
    def start(cls, request: Dict[str, Any], registry: Any) -> Expected:
        """Prepare the step (as `rehearse` does) and start its launch; nothing started when it cannot be."""
        from lute_kernel.api import launch_settings
        from lute_kernel.early_launch import start_plan

        try:
            prepared = prepare_step(request, registry)
            return cls(request, start_plan(prepared.plan, prepared.request, launch_settings(prepared)))
        except (Exception, SystemExit):  # whatever it raises is the real step's to report
            return cls(request, None)

    def discard(self) -> None:
        """Kill what was started unless the step's run adopted it."""
        if self.started is not None:
            self.started.discard()


def prepare_step(request: Dict[str, Any], registry: Any, run_dir_name: Optional[str] = None) -> Any:
    """``lute_kernel.api.prepare`` of a step's request, in the node server's wire form."""
    from lute_kernel.api import prepare

    return prepare(
        request["task"],
        request["config"],
        site=request.get("site"),
        runtime=request.get("runtime"),
        registry=registry,
        host_env=request.get("host_env"),
        run_dir_name=run_dir_name,
    )


def rehearse(request: Dict[str, Any], registry: Any) -> None:
    """Prepare a step (validation only, as ``lute-kernel validate``) and forget it: a warm-up for the next one.

    Why: what a kernel's first ``prepare`` does once per process — the Task's module imported, the
    config and site profile parsed (kept by ``lute_kernel.parse_memo``), regexes compiled, the
    first touch of memory shared with the server since the fork — was paid on every step's path
    (~10-17 ms of a flow step's validation; ~2.5 ms after a rehearsal). The spare does it while it
    waits, with the request of the step before it (a flow's steps mostly share their config, site
    and runtime). It launches and writes nothing; whatever it raises is the real step's to report.
    """
    try:
        prepare_step(request, registry)
    except (Exception, SystemExit):
        pass


def run_step(
    request: Dict[str, Any], out_fd: int, registry: Any, cancel: Any, early: Any = None
) -> int:  # pragma: no cover
    """Be one kernel run (as ``lute-kernel run``): prepare, run, record; write events and the outcome.

    ``early``: this step's launch, started while the step before it ran (``Expected``); adopted
    when the step's plan is exactly it, killed otherwise (``StartedLaunch.matches``).
    """
    from lute_kernel.api import launch_settings, run_prepared
    from lute_kernel.errors import InputError, LuteError
    from lute_kernel.summaries import payload_for_db

    out = os.fdopen(out_fd, "wb", buffering=0)

    def send(data: Dict[str, Any]) -> None:
        out.write(json.dumps(data, default=str).encode() + b"\n")

    try:
        prepared = prepare_step(request, registry, run_dir_name=early.run_id if early is not None else None)
        if early is not None and not early.matches(prepared.plan, launch_settings(prepared)):
            early.discard()
            early = None
        if cancel.cancelled:
            send({"kind": "cancelled", "message": "cancelled before launch"})
            return 1

        def on_event(event: Any) -> None:
            line = {"kind": "event", "event": event.kind, "text": event.text, "rank": event.rank, "level": event.level}
            if event.kind == "progress":
                line.update(done=event.done, total=event.total, message=event.message)
            send(line)

        outcome = run_prepared(prepared, on_event=on_event, cancel=cancel, early=early)
    except InputError as exc:
        send({"kind": "input_error", "message": str(exc)})
        return 2
    except LuteError as exc:
        send({"kind": "error", "message": str(exc)})
        return 1
    send(
        {
            "kind": "outcome",
            "task": outcome.task_name,
            "status": outcome.status.value,
            "summary": payload_for_db(outcome.summary),
            "payload": payload_for_db(outcome.payload),
            "row_id": outcome.row_id,
            "db": str(outcome.db_path),
            "exit_code": outcome.exit_code,
            "reason": outcome.reason,
            "seconds": outcome.seconds,
            "not_recorded": outcome.not_recorded,
            "phases": outcome.timeline.step_phases(),
        }
    )
    return 0 if outcome.ok else 1
