"""Fast start for the local runtime: fork the kernel's interpreter instead of exec'ing a new one.

Owns starting the worker of a ``local``-runtime plan whose argv is exactly
``[sys.executable, "-m", "lute_kernel.worker"]``. The child already has pydantic and the Task's
module imported, so the Task starts in milliseconds instead of after a ~0.2 s interpreter start.
The child gets what an exec'd process would get: a new session, stdin from /dev/null,
stdout/stderr on pipes, exactly the plan's environment and cwd, default signal handlers, and no
logging handlers from the kernel. It never touches the kernel's ZMQ context (the worker makes its
own) and leaves with ``os._exit`` so nothing of the kernel's runs twice. Every other plan is
exec'd by ``spawn``.

One difference from exec remains: ``/proc/<pid>/environ`` still shows the kernel's start-up
environment (``os.environ`` is the plan's). That exposes nothing new: in the local runtime the
Task runs as the same user and can read ``/proc/<kernel pid>/environ`` either way. Isolation is
the Apptainer runtime's job; ``LUTE_NO_FORK=1`` gives the exec path.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import traceback
import warnings
from typing import IO, Optional, Sequence

WORKER_ARGV_TAIL = ("-m", "lute_kernel.worker")


def can_fork(argv: Sequence[str], runtime: str) -> bool:
    """Return True when ``argv`` is this interpreter running the worker in the local runtime.

    Only from a process with no other Python threads (the CLI): a thread could hold a lock
    (an import, a logging handler) that the child would then wait on forever. Flows that run
    Tasks from threads get the exec path. ``LUTE_NO_FORK=1`` forces exec.
    """
    return (
        runtime == "local"
        and hasattr(os, "fork")
        and threading.active_count() == 1
        and os.environ.get("LUTE_NO_FORK") is None
        and len(argv) == 3
        and argv[0] == sys.executable
        and tuple(argv[1:]) == WORKER_ARGV_TAIL
    )


class ForkedProcess:
    """The parent's handle on a forked worker: the subset of ``subprocess.Popen`` the executor uses."""

    def __init__(self, pid: int, stdout_fd: int, stderr_fd: int) -> None:
        self.pid = pid
        self.stdout: Optional[IO[bytes]] = os.fdopen(stdout_fd, "rb", buffering=0)
        self.stderr: Optional[IO[bytes]] = os.fdopen(stderr_fd, "rb", buffering=0)
        self.returncode: Optional[int] = None

    def poll(self) -> Optional[int]:
        """Reap the child if it has exited; return its exit code (negative: killed by a signal)."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        """Block until the child exits."""
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def _become_worker(
    env: dict[str, str],
    cwd: str,
    out_fd: int,
    err_fd: int,
    ready_fd: int,
) -> int:
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    for source, target in ((devnull, 0), (out_fd, 1), (err_fd, 2)):
        os.dup2(source, target)
    # Like exec with close_fds: the Task gets none of the kernel's descriptors (sockets, DB files).
    os.closerange(3, ready_fd)
    os.closerange(ready_fd + 1, os.sysconf("SC_OPEN_MAX"))
    # The kernel's sys.stdout may not be fd 1 (pytest's capture, a redirect, CliRunner): the Task's is.
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - line-buffered, as PYTHONUNBUFFERED
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    os.chdir(cwd)
    # This is the Task's process now: give it exactly the plan's environment, as execve would.
    os.environ.clear()
    os.environ.update(env)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.enable()  # as in a new interpreter, whatever the kernel's start-up did with it
    os.close(ready_fd)  # our group exists and signals act as after exec: the parent may signal us now
    for handler in logging.getLogger().handlers[:]:
        logging.getLogger().removeHandler(handler)
    from lute_kernel.worker import main

    return main()


def fork_worker(env: dict[str, str], cwd: str) -> ForkedProcess:
    """Fork a worker with ``env`` and ``cwd``; return the parent's handle."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    ready_r, ready_w = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    with warnings.catch_warnings():
        # Python 3.12+ warns when forking with threads (here: ZMQ's I/O threads). The child never
        # uses the parent's ZMQ context and exits with os._exit, so no lock they hold is needed.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, measured through the parent's tests
        code = 1
        try:
            os.close(out_r)
            os.close(err_r)
            os.close(ready_r)
            code = _become_worker(env, cwd, out_w, err_w, ready_w)
        except BaseException:
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(code)
    os.close(out_w)
    os.close(err_w)
    os.close(ready_w)
    # Wait for the child's setsid (EOF: it is ready, or died): killpg() before it would find no
    # group, and a timeout or cancel signal sent then would be lost.
    os.read(ready_r, 1)
    os.close(ready_r)
    return ForkedProcess(pid, out_r, err_r)
