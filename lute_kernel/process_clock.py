"""When this process started, on the ``time.monotonic`` clock: the zero of a run's profile.

Owns reading the start from ``/proc/self/stat`` (10 ms resolution) and the one override a warm
kernel's child needs (it counts from when the command it serves started). Stdlib only (os, time):
a ``run`` reads it before anything else is imported.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

_started_at: Optional[float] = None


def started_at(moment: float) -> None:
    """Count this process's start from ``moment`` (a warm kernel's child: when the command that it serves started)."""
    global _started_at
    _started_at = moment


def process_start_monotonic() -> Optional[float]:
    """Return when this process started, on the ``time.monotonic`` clock (None where /proc cannot tell)."""
    if _started_at is not None:
        return _started_at
    try:
        with open("/proc/self/stat", "rb") as stat:
            text = stat.read().decode()
        ticks = int(text[text.rfind(")") + 2 :].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return time.monotonic() - age


__all__ = ["process_start_monotonic", "started_at"]
