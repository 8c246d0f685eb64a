"""Facts about processes read from ``/proc``: start time, parent, children, state, environment marker.

Owns parsing ``/proc/<pid>/stat`` and friends (Linux only). Pure reads: never signals or waits.
Used to tell a dead kernel from a live one (pid plus start time, so a reused pid is not mistaken
for the original) and to find every descendant of the kernel at teardown.
"""

from __future__ import annotations

import os
from typing import List, Optional, Tuple

__all__ = ["children_of", "environ_value", "is_alive", "process_start_time", "stat_fields"]


def stat_fields(pid: int) -> Optional[Tuple[str, int, int]]:
    """Return ``(state, ppid, start_time)`` of ``pid`` from ``/proc/<pid>/stat``, or None if it is gone.

    The start time is in clock ticks since boot (field 22); the command name (field 2) may hold
    spaces and parentheses, so fields are counted after its last ``)``.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read().decode(errors="replace")
    except OSError:
        return None
    rest = text[text.rfind(")") + 2 :].split()
    if len(rest) < 20:
        return None
    return rest[0], int(rest[1]), int(rest[19])


def process_start_time(pid: int) -> Optional[int]:
    """Return the start time of ``pid`` (clock ticks since boot), or None if it is gone."""
    fields = stat_fields(pid)
    return None if fields is None else fields[2]


def is_alive(pid: int, start_time: Optional[int] = None) -> bool:
    """Return True while ``pid`` runs (not a zombie) and, if given, started at ``start_time``."""
    fields = stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return start_time is None or fields[2] == start_time


def children_of(pid: int) -> List[int]:
    """Return the direct children of every thread of ``pid`` (``/proc/<pid>/task/*/children``)."""
    found: List[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as children:
                found.extend(int(p) for p in children.read().split())
        except OSError:
            continue
    return found


def environ_value(pid: int, name: str) -> Optional[str]:
    """Return the value of variable ``name`` in the start-up environment of ``pid``, or None."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            data = environ.read(1 << 20)
    except OSError:
        return None
    prefix = name.encode() + b"="
    for entry in data.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode(errors="replace")
    return None
