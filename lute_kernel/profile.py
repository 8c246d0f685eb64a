"""Where a run's wall time went: named moments of one run, and the breakdown users and benchmarks see.

Owns the ``Timeline`` (monotonic timestamps of the moments the kernel passes: prepared, spawned,
the first worker's hello, parameters sent, result received, exited, torn down, recorded) and turning
it into phases: host start-up (interpreter and imports, from the process's start time in
``/proc``, 10 ms resolution), validation, spawn, container start and worker ready (and the
RUNNING row written meanwhile), parameters sent, the Task, teardown, recording.
``lute-kernel run --profile`` (or ``LUTE_PROFILE=1``) prints it. Stdlib only.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from lute_kernel.process_clock import process_start_monotonic

PHASES: Tuple[Tuple[str, str, str], ...] = (
    # (label, from mark, to mark)
    ("host start-up (interpreter, imports)", "process_start", "prepare_start"),
    ("validation (config, parameters, plan)", "prepare_start", "prepared"),
    ("spawn", "launch", "spawned"),
    ("container start, worker ready", "spawned", "hello"),
    ("RUNNING row (while the worker starts)", "spawned", "admitted"),
    ("parameters sent (after the row)", "hello", "params"),
    ("Task", "params", "result"),
    ("Task exit", "result", "exited"),
    ("teardown", "exited", "closed"),
    ("recording", "closed", "recorded"),
)


@dataclass
class Timeline:
    """Named moments of one run (the first time each is reached counts)."""

    marks: Dict[str, float] = field(default_factory=dict)

    def mark(self, name: str) -> None:
        """Note that the run reached ``name`` now (later calls with the same name are ignored)."""
        self.marks.setdefault(name, time.monotonic())

    def phases(self) -> List[Tuple[str, float]]:
        """Return ``(label, milliseconds)`` for each phase both of whose moments were reached."""
        marks = dict(self.marks)
        start = process_start_monotonic()
        if start is not None:
            marks.setdefault("process_start", start)
        out = []
        for label, begin, end in PHASES:
            # A binary's row is written before its spawn: a phase that ends before it begins is not one.
            if begin in marks and end in marks and marks[end] >= marks[begin]:
                out.append((label, (marks[end] - marks[begin]) * 1000))
        return out

    def report(self) -> str:
        """Return the breakdown as lines for people."""
        phases = self.phases()
        first = min(self.marks.values(), default=0.0)
        start = process_start_monotonic()
        total = (max(self.marks.values(), default=0.0) - (start if start is not None else first)) * 1000
        lines = [f"lute-kernel profile: {total:.0f} ms in all"]
        lines += [f"  {label:<40} {ms:8.1f} ms" for label, ms in phases]
        return "\n".join(lines)


def profiling_requested(env: Optional[Dict[str, str]] = None) -> bool:
    """Return True when ``LUTE_PROFILE`` asks for the breakdown."""
    value = (env if env is not None else os.environ).get("LUTE_PROFILE", "")
    return value not in ("", "0", "false", "no")
