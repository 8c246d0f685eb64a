"""The command's side of the warm kernel: hand the command over, forward signals, return its exit code.

Owns :func:`run_warm`, called first thing by ``lute-kernel run``. It returns None — run cold, as
always — whenever there is no usable server: none listening, ``LUTE_WARM=0``, a directory or
socket that is not private to this user, a server whose code changed since it started (``stale``),
a standard stream that is closed. Once the server has started the child, this process only waits:
each SIGINT/SIGTERM/SIGHUP/SIGQUIT it receives is passed to the child (which handles it exactly
as a cold ``run`` would), and if this process dies the server hangs the child up (SIGHUP: the run
is cancelled and recorded). Stdlib only, and cheap when no server runs (one failed ``connect``).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys

from lute_kernel.warm import wire as protocol
from lute_kernel.warm.address import UnsafeDirectory, address, bind_or_connect, check_private, warm_disabled

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Sequence

_LIMITS = ("RLIMIT_CORE", "RLIMIT_NOFILE", "RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_STACK")


def connect() -> Optional[socket.socket]:
    """Return a connection to this process's warm kernel, or None when there is none to trust."""
    where = address()
    try:
        check_private(where.directory)
    except (OSError, UnsafeDirectory):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        bind_or_connect(sock, where.socket)
        if peer_uid(sock) != os.getuid():
            raise OSError("the server is another user's")
    except OSError:
        sock.close()
        return None
    return sock


def peer_uid(sock: socket.socket) -> int:
    """Return the uid of the process at the other end of a unix socket (SO_PEERCRED)."""
    import struct

    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def run_warm(argv: Sequence[str]) -> Optional[int]:
    """Run the command ``argv`` (with its program name) in a warm kernel; None: run it cold."""
    if warm_disabled():
        return None
    sock = connect()
    if sock is None:
        return None
    with sock:
        try:
            cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None  # a cold run reports the missing working directory itself
        forwarder = _Forwarder(sock)  # from before the request: a Ctrl-C at any moment reaches the run
        try:
            socket.send_fds(sock, [protocol.encode(_run_message(argv))], [0, 1, 2, cwd])
            reply = protocol.decode_reply(sock.recv(protocol.MAX_PACKET))
        except (OSError, protocol.ProtocolError):
            reply = {"op": "lost"}  # e.g. a closed stdin/stdout (EBADF), or a server that went away
        finally:
            os.close(cwd)
        if reply["op"] != "started":  # stale, refused or lost: the cold path is the same command
            forwarder.give_back()
            return None
        return _wait(sock, int(reply.get("pid", 0)))


class _Forwarder:
    """Passes each forwarded signal to the server (for the child), remembering them in case we run cold."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.received: List[int] = []
        self.previous = {signum: signal.signal(signum, self._forward) for signum in protocol.FORWARDED}

    def _forward(self, signum: int, _frame: Any) -> None:
        self.received.append(signum)
        try:
            self.sock.send(protocol.encode({"op": "signal", "signum": signum}))
        except OSError:
            pass

    def give_back(self) -> None:
        """Restore the handlers; deliver again what arrived meanwhile (the cold path sees it as it would have)."""
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        for number in self.received:
            signal.raise_signal(number)


def _run_message(argv: Sequence[str]) -> Dict[str, Any]:
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


def _wait(sock: socket.socket, pid: int) -> int:
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
