"""Waking the executor's poll for a signal that arrived just before the poll began.

Owns one ``signal.set_wakeup_fd`` pipe per run. Python runs a signal's handler (which cancels the
run) at the next bytecode after the C-level handler flagged it; if the signal lands after the
interpreter's last check but before the main thread enters ``zmq_poll``, the poll starts without
being interrupted and the handler waits until the poll returns — up to its timeout, in practice
until the Task ends (seen under load: a SIGQUIT acted on 30 s late). With the wakeup fd, the C
handler also writes the signal's number to a pipe the poll watches, so the poll returns at once
and the handler runs. Only the main thread may install it (elsewhere — a flow's worker thread —
signals are not the run's to handle: nothing is installed). Stdlib only.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Optional


class SignalWakeup:
    """A pipe that becomes readable whenever a signal with a Python handler arrives."""

    def __init__(self, read_fd: int, write_fd: int, previous: int) -> None:
        self.fd = read_fd
        self._write_fd = write_fd
        self._previous = previous

    @classmethod
    def install(cls) -> Optional[SignalWakeup]:
        """Install the wakeup pipe; None outside the main thread (or if the interpreter refuses)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        try:
            previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        except (ValueError, OSError):
            os.close(read_fd)
            os.close(write_fd)
            return None
        return cls(read_fd, write_fd, previous)

    def drain(self) -> None:
        """Empty the pipe (the handlers themselves run in the main thread as Python returns from poll)."""
        try:
            while os.read(self.fd, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def uninstall(self) -> None:
        """Put the previous wakeup fd back and close the pipe."""
        try:
            signal.set_wakeup_fd(self._previous)
        except (ValueError, OSError):
            pass
        for fd in (self.fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
