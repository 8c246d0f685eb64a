"""Turning a child forked by the warm kernel into the command that asked for it.

Owns :func:`become`: after it, the process has the command's standard streams, working directory,
umask, resource limits, environment and argv, default signal handling and no trace of the server
(its sockets closed, its exit hooks dropped) — what an ``execve`` of ``lute-kernel`` by the command
would have given, with the imports already paid. Replacing ``os.environ`` here is that exec's
environment argument (the process is the command from now on; the server's environment is never
touched). Then :func:`run_command` runs the CLI exactly as a cold ``lute-kernel`` does and ends the
process with its exit code.
"""

from __future__ import annotations

import atexit
import io
import os
import signal
import sys
import time
from typing import List, NoReturn

from lute_kernel.warm.protocol import RunRequest, StreamSetup


def become(request: RunRequest, fds: List[int]) -> None:
    """Take on the command's process state; ``fds`` are its stdin, stdout, stderr and working directory."""
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    os.fchdir(fds[3])
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.umask(request.umask)
    _set_limits(request)
    os.environ.clear()
    os.environ.update(request.env)
    time.tzset()
    for signum in range(1, signal.NSIG):
        if signum in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(signum, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as the interpreter sets it up at start
    signal.signal(signal.SIGINT, signal.default_int_handler)  # and this: a Ctrl-C is a KeyboardInterrupt
    for signum in request.ignored:  # unless the command ignored it from its start, as it did these
        signal.signal(signum, signal.SIG_IGN)
    signal.set_wakeup_fd(-1)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    sys.argv = list(request.argv)
    _rebuild_streams(request)
    atexit._clear()  # the server's hooks are not the command's
    if request.process_start is not None:
        from lute_kernel.process_clock import started_at

        started_at(request.process_start)
    if "prefect.context" in sys.modules:
        _settle_prefect()


def _settle_prefect() -> None:
    """Give Prefect (imported by a ``serve --flows`` server) this command's settings and streams.

    Prefect reads its settings (environment, profile, the working directory's ``prefect.toml``,
    ``.env`` and ``pyproject.toml``) and configures logging, onto ``sys.stderr``, when imported:
    in the server. The server's key holds the environment it imported Prefect with
    (``lute_kernel.warm.address``); the directory and the streams are the command's, so both are
    taken again here, as a fresh ``import prefect`` in the command would.
    """
    from prefect.context import refresh_global_settings_context
    from prefect.logging.configuration import setup_logging

    refresh_global_settings_context()
    setup_logging(incremental=False)


def say_exit_code_on(fd: int) -> None:
    """Have this process write its exit code to ``fd`` (the server's pipe) just before it ends.

    The last thing before ``os._exit``, after the output is flushed: the server then ends the
    command without waiting for this process's own exit. The descriptor is close-on-exec (no
    container or program this child starts holds it) and only this process speaks on it (a forked
    worker closes it, and would not speak if it had it).
    """
    from lute_kernel.cli import quick_exit

    speaker = os.getpid()

    def say(code: int) -> None:
        if os.getpid() != speaker:
            return
        try:
            os.write(fd, b"%d" % (code & 0xFF))
        except OSError:
            pass  # the server went away: nobody is listening for the word

    quick_exit.last_words = say


def run_command() -> NoReturn:
    """Run the CLI for ``sys.argv`` as a cold ``lute-kernel`` would, then end this process with its code."""
    code = 1
    try:
        from lute_kernel.cli import command_code

        code = command_code()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        from lute_kernel.cli import quick_exit

        if quick_exit.last_words is not None:
            quick_exit.last_words(code)
        os._exit(code)


def _set_limits(request: RunRequest) -> None:
    import resource

    for name, (soft, hard) in request.limits.items():
        which = getattr(resource, name, None)
        if which is None:
            continue
        try:
            resource.setrlimit(which, (soft, hard))
        except (OSError, ValueError):  # a hard limit above ours cannot be raised: keep the soft one at most
            try:
                resource.setrlimit(which, (soft, resource.getrlimit(which)[1]))
            except (OSError, ValueError):
                pass


def _rebuild_streams(request: RunRequest) -> None:
    """New sys.std* on descriptors 0-2, buffered as the command's were (line-buffered on a terminal)."""
    setups = request.streams
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    sys.stdin = _text(0, "r", setups.get("stdin", StreamSetup()))
    sys.stdout = _text(1, "w", setups.get("stdout", StreamSetup()))
    sys.stderr = _text(2, "w", setups.get("stderr", StreamSetup(errors="backslashreplace")))
    for name in ("stdin", "stdout", "stderr"):  # what the interpreter started with, as a fresh one would
        setattr(sys, f"__{name}__", getattr(sys, name))


def _text(fd: int, mode: str, setup: StreamSetup) -> io.TextIOWrapper:
    raw = io.FileIO(fd, mode, closefd=False)
    buffered: io.BufferedReader | io.BufferedWriter = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
    try:
        return io.TextIOWrapper(
            buffered,
            encoding=setup.encoding,
            errors=setup.errors,
            line_buffering=setup.line_buffering,
            write_through=setup.write_through,
        )
    except LookupError:  # an encoding this interpreter does not know
        return io.TextIOWrapper(buffered, encoding="utf-8", errors=setup.errors if mode == "r" else "backslashreplace")


__all__ = ["become", "run_command", "say_exit_code_on"]
