"""The command's side of the warm kernel: hand the command over, forward signals, return its exit code.

Owns :func:`run_warm`, called first thing by ``lute-kernel run``. It returns None — run cold, as
always — whenever there is no usable server: none listening, ``LUTE_WARM=0``, a directory or
socket that is not private to this user, a server whose code changed since it started (``stale``),
a standard stream that is closed. Once the server has started the child, this process only waits:
each SIGINT/SIGTERM/SIGHUP/SIGQUIT it receives is passed to the child (which handles it exactly
as a cold ``run`` would), and if this process dies the server hangs the child up (SIGHUP: the run
is cancelled and recorded). Stdlib only, and cheap when no server runs (one failed ``connect``).
Until its request is sent it uses C modules only (``_socket``, ``_signal``, ``_json``; see
:mod:`lute_kernel.warm.wire`): what else it needs is imported while the server forks the child.
"""

from __future__ import annotations

import _socket
import os
import struct
import sys

from lute_kernel.warm import wire as protocol
from lute_kernel.warm.address import RUN, UnsafeDirectory, address, bind_or_connect, check_private, warm_disabled

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from typing import Any, Dict, List, Optional, Sequence

_signal: Any = protocol._signal

_LIMITS = ("RLIMIT_CORE", "RLIMIT_NOFILE", "RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_STACK")


def connect(kind: str = RUN) -> Optional[socket.socket]:
    """Return a connection to this process's ``kind`` warm kernel, or None when there is none to trust."""
    raw = _connect(kind)
    if raw is None:
        return None
    import socket

    return socket.socket(fileno=raw.detach())


def _connect(kind: str) -> Optional[_socket.socket]:
    where = address(kind=kind)
    try:
        check_private(where.directory)
    except (OSError, UnsafeDirectory):
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    try:
        bind_or_connect(sock, where.socket)
        if peer_uid(sock) != os.getuid():
            raise OSError("the server is another user's")
    except OSError:
        sock.close()
        return None
    return sock


def peer_uid(sock: _socket.socket) -> int:
    """Return the uid of the process at the other end of a unix socket (SO_PEERCRED)."""
    creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _send_with_fds(sock: _socket.socket, data: bytes, fds: List[int]) -> None:
    """``socket.send_fds``: one packet carrying ``fds`` (SCM_RIGHTS)."""
    sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))])


def run_warm(argv: Sequence[str], kind: str = RUN) -> Optional[int]:
    """Run the command ``argv`` (with its program name) in the ``kind`` warm kernel; None: run it cold."""
    if warm_disabled():
        return None
    sock = _connect(kind)
    if sock is None:
        return None
    try:
        try:
            cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None  # a cold run reports the missing working directory itself
        forwarder = _Forwarder(sock)  # from before the request: a Ctrl-C at any moment reaches the run
        try:
            _send_with_fds(sock, protocol.encode(_run_message(argv, forwarder.ignored)), [0, 1, 2, cwd])
            import json  # noqa: F401  (for the replies: imported while the server forks the child)

            reply = protocol.decode_reply(sock.recv(protocol.MAX_PACKET))
        except (OSError, ValueError, TypeError, protocol.ProtocolError):
            reply = {"op": "lost"}  # e.g. a closed stdin/stdout (EBADF), or a server that went away
        finally:
            os.close(cwd)
        if reply["op"] != "started":  # stale, refused or lost: the cold path is the same command
            forwarder.give_back()
            return None
        import lute_kernel.cli.quick_exit  # noqa: F401  (what ending this process takes, imported while the child runs)

        return _wait(sock, int(reply.get("pid", 0)))
    finally:
        sock.close()


class _Forwarder:
    """Passes each forwarded signal to the server (for the child), remembering them in case we run cold."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.received: List[int] = []
        # What this command ignored from its start (SIGINT of a script's background job, SIGHUP
        # under nohup): its child starts ignoring them too, as this interpreter did.
        self.ignored = [signum for signum in protocol.FORWARDED if _signal.getsignal(signum) == _signal.SIG_IGN]
        self.previous = {signum: _signal.signal(signum, self._forward) for signum in protocol.FORWARDED}

    def _forward(self, signum: int, _frame: Any) -> None:
        self.received.append(signum)
        try:
            self.sock.send(protocol.encode({"op": "signal", "signum": signum}))
        except OSError:
            pass

    def give_back(self) -> None:
        """Restore the handlers; deliver again what arrived meanwhile (the cold path sees it as it would have)."""
        for signum, handler in self.previous.items():
            _signal.signal(signum, handler)
        for number in self.received:
            _signal.raise_signal(number)


def _run_message(argv: Sequence[str], ignored: Sequence[int] = ()) -> Dict[str, Any]:
    from lute_kernel.process_clock import process_start_monotonic

    umask = os.umask(0o022)
    os.umask(umask)
    return {
        "op": "run",
        "argv": list(argv),
        "env": dict(os.environ),
        "umask": umask,
        "process_start": process_start_monotonic(),
        "streams": {name: _setup(getattr(sys, name)) for name in protocol.STREAM_NAMES},
        "limits": _limits(),
        "ignored": list(ignored),
    }


def _setup(stream: Any) -> Dict[str, Any]:
    return {
        "encoding": str(getattr(stream, "encoding", None) or "utf-8"),
        "errors": str(getattr(stream, "errors", None) or "strict"),
        "line_buffering": bool(getattr(stream, "line_buffering", False)),
        "write_through": bool(getattr(stream, "write_through", False)),
    }


def _limits() -> Dict[str, List[int]]:
    import resource

    out = {}
    for name in _LIMITS:
        if hasattr(resource, name):
            soft, hard = resource.getrlimit(getattr(resource, name))
            out[name] = [soft, hard]
    return out


def _wait(sock: _socket.socket, pid: int) -> int:
    """Wait (signals go on being forwarded) until the server reports the child's exit code; return it."""
    while True:
        try:
            data = sock.recv(protocol.MAX_PACKET)
        except OSError:
            data = b""
        if not data:
            return _server_lost(pid)
        try:
            reply = protocol.decode_reply(data)
        except protocol.ProtocolError:
            continue
        if reply["op"] == "exit":
            code = reply.get("code")
            return code if isinstance(code, int) and not isinstance(code, bool) else 1


def _server_lost(pid: int) -> int:
    """The server died mid-run: the child (the run) goes on; wait for it, then say what is known."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        pidfd = -1
    if pidfd >= 0:
        import select

        try:
            select.select([pidfd], [], [])
        finally:
            os.close(pidfd)
    print(
        f"lute-kernel: the warm kernel stopped during the run (its child {pid} has ended); its exit code"
        " is unknown — the run's row in lute.db tells how it ended",
        file=sys.stderr,
    )
    return 1


__all__ = ["connect", "peer_uid", "run_warm"]
