"""What the executor tells its caller while a Task runs: log lines, progress, output, status.

Owns the ``RunEvent`` record and the callback type. The CLI prints events; flows may collect them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class RunEvent:
    """One thing that happened during a run.

    Attributes:
        kind: ``log``, ``progress``, ``stdout``, ``stderr`` or ``status``.
        text: The human-readable line.
        rank: The MPI rank that sent it (0 for single-process Tasks and for the kernel itself).
        level: Logging level name for ``log`` events.
        data: Any data attached (e.g. numpy arrays sent with progress).
        done: For ``progress``: how far the Task is.
        total: For ``progress``: how far it will go (None: unknown).
        message: For ``progress``: the Task's own words, without the count.
    """

    kind: str
    text: str
    rank: int = 0
    level: str = "INFO"
    data: Optional[Any] = None
    done: Optional[float] = None
    total: Optional[float] = None
    message: str = ""


EventSink = Callable[[RunEvent], None]


def ignore_events(event: RunEvent) -> None:
    """Drop an event (the default sink)."""
