"""When a file's modification time can stand for its content (the caches, the viewer, the warm kernel).

Owns the one rule every "changed since?" check by size and mtime follows: file times move in clock
ticks (a few ms), so a file written again within the tick of the stamp taken of it keeps its size and
time. A stamp taken while the file was that fresh is not trusted: it is not cached, or the read it
stood for is repeated (git's "racily clean" entries, the same problem).
"""

from __future__ import annotations

import time
from typing import Iterable, Optional

RACY_NS = 100_000_000
"""A file modified less than this long before its stamp was taken may change again unseen (0.1 s:
many ticks of any file clock, and short enough that a quiet file is trusted at once)."""

__all__ = ["RACY_NS", "settled"]


def settled(mtimes_ns: Iterable[Optional[int]], now_ns: Optional[int] = None) -> bool:
    """Whether stamps of files with these mtimes (taken at ``now_ns``, default now) can be trusted.

    A time well in the future (another host's clock) is trusted: a write from here moves it.
    """
    now = time.time_ns() if now_ns is None else now_ns
    return all(mtime is None or abs(now - mtime) >= RACY_NS for mtime in mtimes_ns)
