"""Ending the ``lute-kernel run`` process once its Tasks are recorded, without the interpreter's slow teardown.

Owns :func:`end_command`: when the command line that just finished is this process's own (not one
a test or a long-lived process runs in-process), it does what the interpreter's exit does that
anyone can see — the ``atexit`` hooks (logging's flush among them), then flushing stdout and
stderr — and ends with ``os._exit``, skipping only the teardown of modules and objects (~15-20 ms
of a short run, more after a big import). When anything could behave differently — another
non-daemon thread still running (the interpreter would wait for it), a stream that cannot be
flushed (the interpreter reports it and exits 120) — it returns and the interpreter exits as always.
Must not be called before the command's output is written: it ends the process.
"""

from __future__ import annotations

import atexit
import os
import sys

TYPE_CHECKING = False  # not typing's: a warm command's own small process imports this module, and typing costs ~3 ms
if TYPE_CHECKING:
    from typing import Callable, Optional, Sequence

__all__ = ["end_command", "is_own_command", "last_words"]

last_words: Optional[Callable[[int], None]] = None
"""Called with the exit code right before ``os._exit`` (a warm kernel's child tells its server the code here)."""


def is_own_command(argv: Sequence[str]) -> bool:
    """Return True when ``argv`` is this process's own command line and nothing else needs the process.

    That is: it equals ``sys.argv[1:]``, this is the main thread, and no other non-daemon thread is
    alive (the interpreter's exit would wait for it).
    """
    if list(argv) != sys.argv[1:]:
        return False
    threading = sys.modules.get("threading")
    if threading is None:  # never imported: no thread was started with it (a warm command's own process)
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    return all(t.daemon or t is threading.main_thread() or not t.is_alive() for t in threading.enumerate())


def _flushed() -> bool:
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except (OSError, ValueError):
            return False
    return True


def end_command(argv: Sequence[str], code: int) -> int:
    """End the process with ``code`` if ``argv`` is its own finished command line; otherwise return ``code``.

    The ``atexit`` hooks run first, in the interpreter's order (they are then cleared, so a normal
    exit after this cannot run them twice), then stdout and stderr are flushed; only when both
    streams flushed does the process end here.
    """
    if not is_own_command(argv):
        return code
    atexit._run_exitfuncs()
    if not _flushed():
        return code  # the interpreter's exit reports the stream and chooses the code, as always
    if last_words is not None:
        last_words(code)
    os._exit(code)
