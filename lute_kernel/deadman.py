"""A dead man's switch: when the kernel dies, even by SIGKILL, every run it started dies too.

Owns one small companion process per kernel, forked at the first launch. It leaves the kernel's
session (a Ctrl-C or a closed terminal reaches the kernel, not it), ignores the usual termination
signals, and holds the read end of a pipe on which the kernel announces each run's process group
(``+pgid`` when it starts, ``-pgid`` when it ended). When the pipe reaches end-of-file — the kernel
exited, whatever the way — it sends SIGTERM to every group still announced, waits a short grace,
sends SIGKILL, and exits. A kernel that exits normally has no groups left, so the companion just
exits. The kernel never waits for it (it is not a child the executor reaps: ``descendants`` knows
it).

The companion runs only ``os`` system calls after the fork (no imports, no logging, no locks), so
forking it from a process that has threads is safe.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import warnings
from typing import Optional, Set

from lute_kernel import descendants

GRACE_S = 3.0
"""Between the companion's SIGTERM and SIGKILL of an orphaned run's process group."""

_lock = threading.Lock()
_pipe_w: Optional[int] = None
_owner_pid: Optional[int] = None


def _companion(read_fd: int) -> None:  # pragma: no cover - runs in the forked companion
    os.setsid()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_IGN)
    groups: Set[int] = set()
    pending = b""
    while True:
        try:
            data = os.read(read_fd, 4096)
        except InterruptedError:
            continue
        except OSError:
            data = b""
        if not data:
            break
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line[:1] == b"+":
                groups.add(int(line[1:]))
            elif line[:1] == b"-":
                groups.discard(int(line[1:]))
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pgid in groups:
            try:
                os.killpg(pgid, signum)
            except OSError:
                pass
        if signum == signal.SIGTERM and groups:
            select.select([], [], [], GRACE_S)


def _ensure_companion() -> Optional[int]:
    global _pipe_w, _owner_pid
    if _pipe_w is not None and _owner_pid == os.getpid():
        return _pipe_w
    read_fd, write_fd = os.pipe()
    with descendants.spawning(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads; see the docstring
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the companion
            try:
                os.close(write_fd)
                # Keep nothing of the kernel's open (sockets, DB files, other runs' pipes).
                os.closerange(3, read_fd)
                os.closerange(read_fd + 1, os.sysconf("SC_OPEN_MAX"))
                _companion(read_fd)
            finally:
                os._exit(0)
        descendants.started(pid)  # never swept as an orphan; never reaped by a run
    os.close(read_fd)
    os.set_inheritable(write_fd, False)
    _pipe_w, _owner_pid = write_fd, os.getpid()
    return write_fd


def _announce(line: str) -> None:
    with _lock:
        fd = _ensure_companion()
        if fd is None:
            return
        try:
            os.write(fd, line.encode())
        except OSError:
            pass  # the companion is gone: nothing more to do than without it


def prepare() -> None:
    """Fork this process's companion now: a kernel about to launch (a flow's spare) starts sooner."""
    with _lock:
        _ensure_companion()


def guard(pgid: int) -> None:
    """A run's process group exists: kill it if this kernel dies before ``release``."""
    _announce(f"+{pgid}\n")


def release(pgid: int) -> None:
    """The run's process group is gone: nothing to kill for it any more."""
    _announce(f"-{pgid}\n")
