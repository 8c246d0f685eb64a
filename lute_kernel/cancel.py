"""Cancellation that a signal handler or another thread can trigger, and a poll loop can wait on.

Owns a self-pipe: ``cancel()`` writes one byte (async-signal-safe), the executor polls the read
end. No flags checked on a timer.
"""

from __future__ import annotations

import os
import signal
from typing import Optional


class CancelToken:
    """Request cancellation of a run, once, with the signal to forward to the Task."""

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self.signum: Optional[int] = None

    def cancel(self, signum: int = signal.SIGTERM) -> None:
        """Ask the run to stop; ``signum`` is forwarded to the Task's process group."""
        if self.signum is None:
            self.signum = signum
        try:
            os.write(self._write_fd, b"x")
        except (BlockingIOError, OSError):
            pass  # already signalled, or closed after the run ended

    @property
    def cancelled(self) -> bool:
        """Return True once cancel() was called."""
        return self.signum is not None

    def fileno(self) -> int:
        """Return the fd that becomes readable on cancel (for poll)."""
        return self._read_fd

    def close(self) -> None:
        """Close both pipe ends."""
        for fd in (self._read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
