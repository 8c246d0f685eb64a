"""Reading a child's stdout/stderr pipe without blocking, line by line, keeping a short tail.

Owns line splitting across reads and the tail kept for failure summaries.
"""

from __future__ import annotations

import collections
import os
from typing import Deque, List

TAIL_LINES = 20
CHUNK = 1 << 16


class OutputPipe:
    """One pipe of the Task's process."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name
        self.closed = False
        self.tail: Deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._partial = b""
        os.set_blocking(fd, False)

    def _lines(self, data: bytes) -> List[str]:
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        lines = [line.decode(errors="replace").rstrip("\r") for line in complete]
        self.tail.extend(lines)
        return lines

    def read_available(self) -> List[str]:
        """Return the complete lines readable now; mark the pipe closed at EOF."""
        lines: List[str] = []
        while not self.closed:
            try:
                data = os.read(self.fd, CHUNK)
            except BlockingIOError:
                break
            if not data:
                self.closed = True
                break
            lines.extend(self._lines(data))
        return lines

    def drain(self) -> List[str]:
        """Return what is left, including a last line without a newline."""
        lines = self.read_available()
        if self._partial:
            lines.extend(self._lines(b"\n"))
        return lines
