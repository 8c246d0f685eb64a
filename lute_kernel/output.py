"""Reading a child's stdout/stderr pipe without blocking, line by line, keeping a short tail.

Owns line splitting across reads, the cap on what one line may keep in memory, and the tail kept
for failure summaries. Work is linear in the bytes read (each byte is scanned once, a partial line
is never re-joined per read) and bounded per call, so a Task writing gigabytes without a newline
can neither grow the kernel nor keep the executor from its deadline, cancellation and socket.
"""

from __future__ import annotations

import collections
import os
from typing import Deque, List, Tuple

TAIL_LINES = 20
CHUNK = 1 << 16
MAX_LINE_BYTES = 64 << 10
"""What one line keeps; the rest of an over-long line is counted and dropped."""
MAX_READ_PER_CALL = 1 << 20
"""Most bytes one ``read_available`` call takes; the executor's loop polls again for the rest."""


class OutputPipe:
    """One pipe of the Task's process."""

    def __init__(self, fd: int, name: str, *, max_line: int = MAX_LINE_BYTES) -> None:
        self.fd = fd
        self.name = name
        self.closed = False
        self.tail: Deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.max_line = max_line
        self._parts: List[bytes] = []
        self._kept = 0
        self._dropped = 0
        os.set_blocking(fd, False)

    def _finish_line(self, last: bytes) -> str:
        self._keep(last)
        data = b"".join(self._parts)
        line = data.decode(errors="replace").rstrip("\r")
        if self._dropped:
            line += f" … [{self._dropped} more bytes of this line dropped]"
        self._parts, self._kept, self._dropped = [], 0, 0
        self.tail.append(line)
        return line

    def _keep(self, piece: bytes) -> None:
        room = self.max_line - self._kept
        if room > 0:
            kept = piece[:room]
            self._parts.append(kept)
            self._kept += len(kept)
        self._dropped += max(0, len(piece) - max(room, 0))

    def _lines(self, data: bytes) -> List[str]:
        lines: List[str] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            lines.append(self._finish_line(data[start:end]))
            start = end + 1
        if start < len(data):
            self._keep(data[start:])
        return lines

    def _read(self, limit: int) -> Tuple[List[str], int]:
        lines: List[str] = []
        taken = 0
        while not self.closed and taken < limit:
            try:
                data = os.read(self.fd, CHUNK)
            except BlockingIOError:
                break
            if not data:
                self.closed = True
                break
            taken += len(data)
            lines.extend(self._lines(data))
        return lines, taken

    def read_available(self) -> List[str]:
        """Return the complete lines readable now (at most ~1 MiB read); mark the pipe closed at EOF."""
        return self._read(MAX_READ_PER_CALL)[0]

    def drain(self, limit: int = 64 << 20) -> List[str]:
        """Return what is left (at most ``limit`` bytes more), including a last line without a newline.

        Called after the process group is gone; the bound keeps a pipe held open by an escaped
        descendant from pinning the kernel here.
        """
        lines, _ = self._read(limit)
        if self._parts or self._dropped:
            lines.append(self._finish_line(b""))
        return lines
