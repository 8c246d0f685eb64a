"""What a worker's ``log``, ``progress`` and ``error`` messages become: the run events the display, flows and logs see.

Owns reading those message bodies defensively (they come from the Task's process): a level or
message that is not a string becomes its ``str``, a progress count that is not a finite number
becomes None (a renderer's input stays in ``data``). Pure.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

from lute_kernel.events import RunEvent


def log_event(body: Dict[str, Any], rank: int) -> RunEvent:
    """The event of one ``log`` message (a Python logging record from the Task)."""
    return RunEvent("log", str(body.get("message", "")), rank, str(body.get("level", "INFO")))


def error_event(body: Dict[str, Any], rank: int) -> RunEvent:
    """The event of an ``error`` message (what the Task raised), as an ERROR log line."""
    return RunEvent("log", f"{body.get('type')}: {body.get('message')}", rank, "ERROR")


def progress_event(body: Dict[str, Any], rank: int) -> RunEvent:
    """The event of one ``progress`` message: ``[done/total] message``, with its numbers and data."""
    return RunEvent(
        "progress",
        _progress_text(body),
        rank,
        data=body.get("data"),
        done=_number(body.get("done")),
        total=_number(body.get("total")),
        message=str(body.get("message", "")),
    )


def _number(value: Any) -> Optional[float]:
    """A progress count as a float, or None when the worker sent something else (a renderer's input)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # a huge integer
        return None
    return number if math.isfinite(number) else None


def _progress_text(body: Dict[str, Any]) -> str:
    total = body.get("total")
    count = f"{body.get('done')}/{total}" if total is not None else f"{body.get('done')}"
    return f"[{count}] {body.get('message', '')}".rstrip()
