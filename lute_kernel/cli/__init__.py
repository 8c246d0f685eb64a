"""The ``lute-kernel`` command line (typer). The only layer that prints for people and exits.

Owns argument parsing, turning exceptions into messages and exit codes (0 completed, 1 the Task
did not complete, 2 bad input, 130 interrupted), and signal handling for ``run``. Everything it
does is a call into ``lute_kernel.api`` (the same calls Prefect flows make).

:func:`main` is the last line of defence: whatever escapes a command ends as one line on stderr,
never a traceback. Errors are plain ``error: …`` lines (the last line of the output, usage errors
too) when stderr is not a terminal — a Slurm log, a pipe, CI —, and rich's formatting on one. An
interrupt (Ctrl-C, even a second one while starting up) exits 130 with ``lute-kernel: interrupted``;
any other unexpected exception prints
``error: internal error: <Type>: <message> (traceback in <file>)``, the traceback written to a
file under ``$TMPDIR``, and exits 1. The commands themselves are in :mod:`lute_kernel.cli.app`,
imported inside :func:`main` so that an interrupt while importing is caught too.
"""

from __future__ import annotations

import gc
import os
import sys
import types

_signal = __import__("_signal")  # signal's C core: the module `signal` builds enums, which a warm command skips

TYPE_CHECKING = False  # not typing's: importing typing costs a `run` ~4 ms before its warm kernel is asked
if TYPE_CHECKING:
    from typing import Any, NoReturn

    import typer

EXIT_INTERRUPTED = 130
"""128 + SIGINT, what shells report for a command ended by Ctrl-C."""

_interrupt_reported = False


def main() -> NoReturn:
    """Console-script entry point: run the command (in a warm kernel when one serves), then exit with its code."""
    code = _warm_code()
    if code is None:
        code = command_code()
    else:  # the warm kernel's child ran it: this small interpreter's teardown is all that is left (~9 ms)
        from lute_kernel.cli.quick_exit import end_command

        end_command(sys.argv[1:], code)
    sys.exit(code)


MAYBE_WARM = frozenset(("run", "validate", "explain", "rerun", "flow"))
"""First arguments a warm kernel may serve (``lute_kernel.warm.address.warm_kind`` decides which)."""


def _warm_code() -> int | None:
    """Hand the command to this installation's warm kernel (``lute-kernel serve``) if one serves; None: run cold."""
    if len(sys.argv) < 2 or sys.argv[1] not in MAYBE_WARM:
        return None  # nothing imported for the commands no warm kernel serves (`--help`, `tasks`, …)
    try:
        from lute_kernel.warm.address import warm_kind

        kind = warm_kind(sys.argv)
        if kind is None:
            return None
        from lute_kernel.warm.client import run_warm

        code = run_warm(sys.argv, kind)
        if code is None:
            from lute_kernel.warm import autostart

            if autostart.wanted():  # LUTE_WARM=auto: this command runs cold, the next ones warm
                autostart.start_after_this_command(kind)
        return code
    except KeyboardInterrupt:
        return _interrupted()
    except Exception:  # the warm path is an optimisation: whatever goes wrong there, the cold path runs
        return None


def command_code() -> int:
    """Run the command of ``sys.argv`` in this process; return its exit code (a warm kernel's child calls this too)."""
    try:
        try:
            code = _run_app()
        except Exception as exc:  # the last line of defence: one line, not a traceback
            code = _internal_error(exc)
    except KeyboardInterrupt:  # in a command, while importing, or while reporting an error
        code = _interrupted()
    # Everything allocated so far lives until exit: skip walking it in the final collections
    # (~80 ms of a short `run` on this machine).
    gc.freeze()
    _set_sigint(_interrupted_while_exiting)
    return code


def _run_app() -> int:
    from lute_kernel.cli.lean import lean_command

    lean = lean_command(sys.argv[1:])  # a plain `run` or `tasks`: no typer or click (nor rich before a Task)
    if lean is not None:
        return lean
    from lute_kernel.cli.app import app
    from lute_kernel.cli.common import click_exceptions, show_click_error

    usage_errors, aborts = click_exceptions()
    try:
        # Not standalone: usage errors come back here, to be shown plainly where stderr is no terminal.
        code = app(standalone_mode=False)
    except usage_errors as exc:
        return show_click_error(exc)
    except aborts:
        return _interrupted()
    except SystemExit as exc:
        code = _code_of(exc)
    # typer turns a KeyboardInterrupt inside a command into a silent exit 130.
    if code == EXIT_INTERRUPTED:
        return _interrupted()
    return code if isinstance(code, int) else 0


def _code_of(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    _say(str(exc.code))  # sys.exit("text") prints the text and means failure
    return 1


def _interrupted() -> int:
    global _interrupt_reported
    _set_sigint(_interrupted_while_exiting)  # first, so a second Ctrl-C cannot land in the next line
    if not _interrupt_reported:
        _interrupt_reported = True
        _say("lute-kernel: interrupted")
    return EXIT_INTERRUPTED


def _interrupted_while_exiting(signum: int, frame: Any) -> None:
    # Python's exit joins threads and runs atexit hooks; a Ctrl-C there would print a traceback
    # from inside the interpreter. The command is over: report once and leave at once.
    if not _interrupt_reported:
        _say("lute-kernel: interrupted")
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    os._exit(EXIT_INTERRUPTED)


def _set_sigint(handler: Any) -> None:
    try:
        _signal.signal(_signal.SIGINT, handler)
    except ValueError:  # not the main thread (main() called from a test runner's thread)
        pass


def _internal_error(exc: Exception) -> int:
    where = _write_traceback(exc)
    try:
        message = str(exc)
    except Exception:  # an exception whose __str__ fails still gets its line
        message = "(no message)"
    message = " ".join(message.split())
    if len(message) > 300:
        message = message[:297] + "..."
    _say(f"error: internal error: {type(exc).__name__}: {message} ({where})")
    return 1


def _write_traceback(exc: Exception) -> str:
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        # mkstemp: a fresh file (O_EXCL, mode 0600), never one another user planted in a shared /tmp.
        fd, path = tempfile.mkstemp(prefix=f"lute-kernel-crash-{os.getpid()}-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as out:
            out.write(f"lute-kernel {' '.join(sys.argv[1:])}\n{text}")
    except OSError as err:
        return f"traceback not written: {err.strerror or err}"
    return f"traceback in {path}"


def _say(line: str) -> None:
    # One write with its newline: a signal whose handler ends the process between print's two
    # writes (stderr is unbuffered under PYTHONUNBUFFERED) would leave the line without its end.
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed or gone: the exit code still tells
        pass


class _CliPackage(types.ModuleType):
    """This package as a module object whose ``app`` is the typer app, imported on first use.

    Importing ``lute_kernel.cli`` stays cheap (typer and the commands load inside ``main()``, where an
    interrupt is caught). The import system records the submodule ``lute_kernel.cli.app`` as this
    package's ``app`` attribute; the setter ignores that, so ``from lute_kernel.cli import app`` is
    the typer app whatever was imported first (Python's documented ``__class__`` customisation).
    """

    @property
    def app(self) -> typer.Typer:
        from lute_kernel.cli.app import app

        return app

    @app.setter
    def app(self, value: Any) -> None:
        pass


sys.modules[__name__].__class__ = _CliPackage

if TYPE_CHECKING:
    app: typer.Typer

__all__ = ["EXIT_INTERRUPTED", "MAYBE_WARM", "app", "command_code", "main"]
