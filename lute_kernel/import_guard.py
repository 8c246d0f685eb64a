"""Importing code the kernel does not trust to behave: Task modules, at discovery.

Owns running one import so that whatever the module does at import time becomes a recorded
failure instead of the end of the command: ``sys.exit()`` (``SystemExit``), any other
``BaseException``, or hanging (bounded by ``SIGALRM``, which raises in the importing frame; only
on the main thread, where signals are delivered). ``KeyboardInterrupt`` is the user's, not the
module's: it still aborts. Must not decide what to import, or register anything.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Tuple, TypeVar

DEFAULT_IMPORT_TIMEOUT_S = 10.0
TIMEOUT_ENV = "LUTE_TASK_IMPORT_TIMEOUT"

T = TypeVar("T")


class ImportTimedOut(BaseException):
    """The import ran past its time limit.

    A ``BaseException``, so that a module's own ``except Exception`` cannot swallow it.
    """


def import_timeout(env: Optional[Any] = None) -> Tuple[float, str]:
    """Return the per-module import limit in seconds (0: none) and a problem with ``LUTE_TASK_IMPORT_TIMEOUT``."""
    raw = (os.environ if env is None else env).get(TIMEOUT_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_IMPORT_TIMEOUT_S, ""
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value >= 0 and value < 1e6):  # also refuses nan and inf
        problem = f"{TIMEOUT_ENV}={raw!r} is not a number of seconds (0 for no limit)"
        return DEFAULT_IMPORT_TIMEOUT_S, f"{problem}; using {DEFAULT_IMPORT_TIMEOUT_S:g}"
    return value, ""


class _ForeignAlarm(BaseException):
    """Carries what another SIGALRM user's handler raised, so that it is not taken for the module's."""

    def __init__(self, raised: BaseException) -> None:
        super().__init__(raised)
        self.raised = raised


@contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Raise ``ImportTimedOut`` in the block's frame after ``seconds`` (no limit off the main thread, or at 0).

    Another SIGALRM user (pytest-timeout, say) keeps its timer: if it comes due during the block its
    handler runs (and what that raises goes on, untouched), else it is re-armed afterwards with what
    is left of it.
    """
    if seconds <= 0 or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    start = time.monotonic()
    mine = start + seconds
    theirs: Optional[float] = None

    def on_alarm(signum: int, frame: Any) -> None:
        nonlocal theirs
        now = time.monotonic()
        if theirs is not None and now >= theirs - 1e-3:
            theirs = None
            signal.setitimer(signal.ITIMER_REAL, max(mine - now, 1e-6))
            if callable(previous):
                try:
                    previous(signum, frame)
                except BaseException as exc:  # handed on below, as itself
                    raise _ForeignAlarm(exc) from None
            return
        raise ImportTimedOut(f"{what} took longer than {seconds:g} s to import ({TIMEOUT_ENV} sets the limit)")

    previous: Any = signal.signal(signal.SIGALRM, on_alarm)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    if old_delay:
        theirs = start + old_delay
        if old_delay < seconds:  # the other timer comes first
            signal.setitimer(signal.ITIMER_REAL, old_delay)
    try:
        yield
    except _ForeignAlarm as exc:
        raise exc.raised from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if theirs is not None:
            signal.setitimer(signal.ITIMER_REAL, max(theirs - time.monotonic(), 1e-6), old_interval)


def guarded(load: Callable[[], T], what: str, seconds: float) -> Tuple[Optional[T], str]:
    """Return ``(load(), "")``, or ``(None, why)`` when the import raised anything but KeyboardInterrupt or hung."""
    try:
        with deadline(seconds, what):
            try:
                return load(), ""
            except (_ForeignAlarm, KeyboardInterrupt, ImportTimedOut):
                raise
            except BaseException as exc:  # a Task module's import must never end the command
                return None, _describe(exc)
    except ImportTimedOut as exc:
        return None, f"hung at import: {exc}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit: the module called sys.exit({exc.code!r}) at import"
    return f"{type(exc).__name__}: {exc}"
