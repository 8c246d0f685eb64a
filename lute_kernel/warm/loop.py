"""The warm kernel's loop: accept commands, fork one child each, forward signals, reap and report.

Owns the connections and the children of one server (:mod:`lute_kernel.warm.server` sets it up).
Single-threaded: one ``poll`` over the listening socket, each command's connection, each child's
pidfd and exit-code pipe, and a signal wakeup pipe. Only the same user may connect
(``SO_PEERCRED``); a bad packet is answered ``refused``; a command that goes away has its child
hung up (SIGHUP); a change to a file the server imported is answered ``stale`` and the server
stops, starting its replacement. A command ends once its child has said its exit code (output
flushed, run recorded, processes reaped: the last thing before ``os._exit``); the exit of a process
forked from the server (~5 ms of unmapping its copy of the server) is not waited for, and the child
is reaped when it is gone.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from lute_kernel.warm import protocol
from lute_kernel.warm.address import Address
from lute_kernel.warm.freshness import changed


@dataclass
class _Connection:
    sock: socket.socket
    pid: Optional[int] = None
    pending: List[int] = field(default_factory=list)  # signals that arrived before the child existed


@dataclass
class ServerState:
    """What ``serve --status`` reports."""

    address: Address
    idle_timeout: float
    started: float = field(default_factory=time.time)
    served: int = 0
    stale: Optional[str] = None


class Loop:
    """One server's commands and children, until it stops."""

    def __init__(self, listener: socket.socket, lock: int, state: ServerState, snapshot: Dict[str, int]) -> None:
        self.listener: Optional[socket.socket] = listener
        self.lock = lock
        self.state = state
        self.snapshot = snapshot
        self.connections: Dict[int, _Connection] = {}  # fd -> connection
        self.children: Dict[int, tuple[int, Optional[_Connection]]] = {}  # pidfd -> (pid, its command)
        self.last_words: Dict[int, int] = {}  # read end of a child's exit-code pipe -> its pidfd
        self.poller = select.poll()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.stopping = False
        self.idle_since = time.monotonic()
        self.restart: Optional[List[str]] = None
        self.restart_cwd: Optional[str] = None

    def run(self, ready: Optional[Callable[[], None]]) -> int:
        """Serve until stopped and no child is left; ``ready`` is called once commands may connect."""
        assert self.listener is not None
        self.poller.register(self.listener.fileno(), select.POLLIN)
        self.poller.register(self.wake_r, select.POLLIN)
        signal.set_wakeup_fd(self.wake_w)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda *_: None)  # the wakeup fd tells the loop
        if ready is not None:
            ready()
        try:
            while not (self.stopping and not self.children):
                for fd, _ in self.poller.poll(self._timeout_ms()):
                    self._handle(fd)
                if self._idle_too_long():
                    self.stop_accepting()
        finally:
            signal.set_wakeup_fd(-1)
        return 0

    def _timeout_ms(self) -> Optional[int]:
        if self.stopping or self.connections or self.children:
            return None
        left = self.state.idle_timeout - (time.monotonic() - self.idle_since)
        return max(0, int(left * 1000) + 1)

    def _idle_too_long(self) -> bool:
        busy = self.connections or self.children
        return not busy and time.monotonic() - self.idle_since >= self.state.idle_timeout

    def _handle(self, fd: int) -> None:
        if self.listener is not None and fd == self.listener.fileno():
            self._accept()
        elif fd == self.wake_r:
            try:
                os.read(self.wake_r, 512)
            except BlockingIOError:
                pass
            self.stop_accepting()  # SIGTERM, SIGINT or SIGHUP
        elif fd in self.children:
            self._reap(fd)
        elif fd in self.last_words:
            self._hear_exit_code(fd)
        elif fd in self.connections:
            self._receive(self.connections[fd])

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        from lute_kernel.warm.client import peer_uid

        try:
            ours = peer_uid(sock) == os.getuid()
        except OSError:
            ours = False
        if not ours:
            sock.close()
            return
        self.connections[sock.fileno()] = _Connection(sock)
        self.poller.register(sock.fileno(), select.POLLIN)

    def _receive(self, conn: _Connection) -> None:
        try:
            data, fds, flags, _ = socket.recv_fds(conn.sock, protocol.MAX_PACKET, 4)
        except OSError:
            data, fds, flags = b"", [], 0
        if not data:
            self._drop(conn)
            return
        try:
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                raise protocol.ProtocolError("packet too large")
            request = protocol.decode_request(data)
            self._answer(conn, request, fds)
        except protocol.ProtocolError as exc:
            self._reply(conn, {"op": "refused", "message": str(exc)})
        finally:
            for received in fds:
                os.close(received)

    def _answer(self, conn: _Connection, request: protocol.Request, fds: List[int]) -> None:
        if isinstance(request, protocol.SignalRequest):
            if conn.pid is None:
                conn.pending.append(request.signum)
            else:
                _signal(conn.pid, request.signum)
        elif isinstance(request, protocol.RunRequest):
            self._start(conn, request, fds)
        elif request.op == "status":
            self._reply(conn, self._status())
        else:  # stop
            self.stop_accepting()
            self._reply(conn, {"op": "stopping", "running": len(self.children)})

    def _start(self, conn: _Connection, request: protocol.RunRequest, fds: List[int]) -> None:
        if conn.pid is not None or len(fds) != 4:
            raise protocol.ProtocolError("one run per connection, with its stdin, stdout, stderr and directory")
        if self.listener is None:
            self._reply(conn, {"op": "stale" if self.state.stale else "refused", "message": "not serving"})
            return
        moved = changed(self.snapshot)
        if moved is not None:
            self.state.stale = moved
            print(f"lute-kernel serve: {moved} changed since the server started: stopping", file=sys.stderr, flush=True)
            self._reply(conn, {"op": "stale", "changed": moved})
            self.stop_accepting()
            self._replace_ourselves()
            return
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        words_r, words_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child, tested end to end
            os.close(words_r)
            self._be_child(request, fds, words_w)
        os.close(words_w)
        self.state.served += 1
        conn.pid = pid
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = (pid, conn)
        self.poller.register(pidfd, select.POLLIN)
        self.last_words[words_r] = pidfd
        self.poller.register(words_r, select.POLLIN)
        self._reply(conn, {"op": "started", "pid": pid})
        for signum in conn.pending:
            _signal(pid, signum)
        conn.pending.clear()

    def _replace_ourselves(self) -> None:
        """Start a server like this one (the lock is free now); it imports the code as it is now."""
        if self.restart is None:
            return
        import subprocess

        from lute_kernel.spawn import start_command

        try:
            proc = start_command(self.restart, cwd=self.restart_cwd, stdout=subprocess.DEVNULL, stderr=None)
        except Exception as exc:  # the old server still stops; the next `serve` starts one
            print(f"lute-kernel serve: could not start a new server: {exc}", file=sys.stderr, flush=True)
            return
        print(f"lute-kernel serve: started a new server (pid {proc.pid} detaches it)", file=sys.stderr, flush=True)
        pidfd = os.pidfd_open(proc.pid)
        self.children[pidfd] = (proc.pid, None)  # reaped like a child: it exits once the new server serves
        self.poller.register(pidfd, select.POLLIN)

    def _be_child(self, request: protocol.RunRequest, fds: List[int], last_words: int) -> None:  # pragma: no cover
        try:  # (the child, tested end to end)
            os.setpgid(0, 0)  # a Ctrl-C in the server's terminal is not the command's
            for fd in [*self.connections, *self.children, *self.last_words, self.wake_r, self.wake_w, self.lock]:
                if fd >= 0:
                    os.close(fd)
            if self.listener is not None:
                self.listener.close()
            from lute_kernel.warm.child import become, run_command, say_exit_code_on

            become(request, fds)
            say_exit_code_on(last_words)
        except BaseException:
            os._exit(70)
        run_command()

    def _hear_exit_code(self, words_r: int) -> None:
        """A child said its exit code (or closed the pipe without one): its command may end now."""
        pidfd = self.last_words.pop(words_r)
        self.poller.unregister(words_r)
        try:
            data = os.read(words_r, 16)
        except OSError:
            data = b""
        os.close(words_r)
        text = data.decode("ascii", "replace").strip()
        if not text.isdigit() or pidfd not in self.children:
            return  # no word: the child is reaped (and its code reported) when it is gone
        pid, conn = self.children[pidfd]
        if conn is not None and conn.sock.fileno() in self.connections:
            self._reply(conn, {"op": "exit", "code": int(text) & 0xFF})
            self._close(conn)
        self.children[pidfd] = (pid, None)

    def _reap(self, pidfd: int) -> None:
        pid, conn = self.children.pop(pidfd)
        self.poller.unregister(pidfd)
        os.close(pidfd)
        for words_r in [r for r, owner in self.last_words.items() if owner == pidfd]:
            del self.last_words[words_r]  # it ended without a word (killed, or failed to start)
            self.poller.unregister(words_r)
            os.close(words_r)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            code = 128 - code  # killed by a signal: what a shell reports
        if conn is not None and conn.sock.fileno() in self.connections:
            self._reply(conn, {"op": "exit", "code": code})
            self._close(conn)
        self.idle_since = time.monotonic()

    def _drop(self, conn: _Connection) -> None:
        """The command went away: hang up its child (if it has one, it cancels and records its run)."""
        if conn.pid is not None and any(p == conn.pid for p, _ in self.children.values()):
            _signal(conn.pid, signal.SIGHUP)
        self._close(conn)

    def _close(self, conn: _Connection) -> None:
        fd = conn.sock.fileno()
        if fd in self.connections:
            self.poller.unregister(fd)
            del self.connections[fd]
        conn.sock.close()
        self.idle_since = time.monotonic()

    def _reply(self, conn: _Connection, message: Dict[str, object]) -> None:
        try:
            conn.sock.send(protocol.encode(message))
        except OSError:
            pass

    def _status(self) -> Dict[str, object]:
        return {
            "op": "status",
            "pid": os.getpid(),
            "socket": str(self.state.address.socket),
            "started": self.state.started,
            "served": self.state.served,
            "running": len(self.children),
            "idle_timeout": self.state.idle_timeout,
            "serving": self.listener is not None,
        }

    def stop_accepting(self) -> None:
        """Stop taking commands: remove the socket, release the lock (children still running finish)."""
        self.stopping = True
        if self.listener is None:
            return
        self.poller.unregister(self.listener.fileno())
        try:
            if os.stat(self.state.address.socket).st_ino == os.fstat(self.listener.fileno()).st_ino:
                os.unlink(self.state.address.socket)
        except OSError:
            pass
        self.listener.close()
        self.listener = None
        os.close(self.lock)  # a new server may start while our last children finish
        self.lock = -1


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)  # not reaped yet (only we reap it), so the pid is still that child's
    except ProcessLookupError:
        pass


__all__ = ["Loop", "ServerState"]
