"""Whether the kernel that wrote a RUNNING row is still alive: RUNNING, LOST, or another host's.

Owns the kernel's identity as rows record it (host, pid, and the pid's start time, field 22 of
``/proc/<pid>/stat`` in clock ticks since boot, so a reused pid is told from the original) and
the verdict readers show for a row. The verdict is for display only: rows are never changed on
its strength (a kernel in another pid namespace on the same host would look dead). Must not
open the database.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any, Optional, Tuple

from lute_kernel.procinfo import process_start_time

RUNNING = "RUNNING"
LOST = "LOST"
"""Shown for a RUNNING row whose kernel, on this host, is gone (or its pid now belongs to another process)."""

__all__ = ["LOST", "RUNNING", "display_status", "is_lost", "kernel_identity", "process_start"]


def process_start(pid: int) -> Optional[int]:
    """Return when process ``pid`` started (clock ticks since boot), or None if it is gone or unreadable."""
    try:
        return process_start_time(int(pid))
    except (ValueError, OverflowError):
        return None


def kernel_identity() -> Tuple[str, int, Optional[int]]:
    """Return this process's host name, pid and start time, as a RUNNING row records them."""
    pid = os.getpid()
    return socket.gethostname(), pid, process_start(pid)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    except (OSError, ValueError, OverflowError):
        return False
    return True


def is_lost(row: Mapping[str, Any], *, host: Optional[str] = None) -> bool:
    """Return whether a RUNNING row was written by a kernel of this host that no longer runs.

    Args:
        row: A Task row (``result.task_status``, ``prov.host``, ``prov.pid``, ``prov.pid_start``).
        host: This host's name (default: ``socket.gethostname()``).

    Returns:
        False for final rows, rows of other hosts and rows without a pid (nothing to tell).
    """
    if row.get("result.task_status") != RUNNING:
        return False
    pid, recorded_start = row.get("prov.pid"), row.get("prov.pid_start")
    if row.get("prov.host") != (host or socket.gethostname()) or not isinstance(pid, int) or pid <= 0:
        return False
    current_start = process_start(pid)
    if current_start is None:
        return not _pid_exists(pid)  # no /proc here: existence is all there is to tell
    return isinstance(recorded_start, int) and current_start != recorded_start


def display_status(row: Mapping[str, Any], *, host: Optional[str] = None) -> Optional[str]:
    """Return the status a reader shows: the recorded one, ``LOST``, or ``RUNNING (host X)``.

    Args:
        row: A Task row.
        host: This host's name (default: ``socket.gethostname()``).
    """
    status = row.get("result.task_status")
    if status != RUNNING:
        return None if status is None else str(status)
    here = host or socket.gethostname()
    other = row.get("prov.host")
    if other and other != here:
        return f"{RUNNING} (host {other})"
    return LOST if is_lost(row, host=here) else RUNNING
