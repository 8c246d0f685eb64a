"""Where a run's wall time went: named moments of one run, and the breakdown users and benchmarks see.

Owns the ``Timeline`` (monotonic timestamps of the moments the kernel passes: prepared, spawned,
the first worker's hello, parameters sent, result received, exited, torn down, recorded) and turning
it into phases: host start-up (interpreter and imports, from the process's start time in
``/proc``, 10 ms resolution), validation, spawn, container start and worker ready (and the
RUNNING row written meanwhile), parameters sent, the Task, teardown, recording.
``lute-kernel run --profile`` (or ``LUTE_PROFILE=1``) prints it; ``flow run --profile`` prints each
phase's median over the flow's steps (``steps_report``). Stdlib only.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from lute_kernel.process_clock import process_start_monotonic

PHASES: Tuple[Tuple[str, str, str], ...] = (
    # (label, from mark, to mark)
    ("host start-up (interpreter, imports)", "process_start", "prepare_start"),
    ("validation (config, parameters, plan)", "prepare_start", "prepared"),
    ("spawn", "launch", "spawned"),
    ("early start: host start-up until its spawn", "process_start", "early_spawn"),
    ("early start: validated while it starts", "spawned", "adopted"),
    ("container start, worker ready", "spawned", "hello"),
    ("RUNNING row (while the worker starts)", "spawned", "admitted"),
    ("parameters sent (after the row)", "hello", "params"),
    ("Task", "params", "result"),
    ("Task exit", "result", "exited"),
    ("teardown", "exited", "closed"),
    ("recording", "closed", "recorded"),
)

IN_ALL = "in all (validation to recording)"
"""The phase of ``Timeline.step_phases`` that is the whole run, from its first moment to its last."""


@dataclass
class Timeline:
    """Named moments of one run (the first time each is reached counts)."""

    marks: Dict[str, float] = field(default_factory=dict)

    def mark(self, name: str) -> None:
        """Note that the run reached ``name`` now (later calls with the same name are ignored)."""
        self.marks.setdefault(name, time.monotonic())

    def phases(self, *, with_start_up: bool = True) -> List[Tuple[str, float]]:
        """Return ``(label, milliseconds)`` for each phase both of whose moments were reached.

        ``with_start_up=False``: without the host's start-up (a flow step's kernel is forked, ready,
        before its step is known: its process's age says nothing about the step).
        """
        marks = dict(self.marks)
        start = process_start_monotonic() if with_start_up else None
        if start is not None:
            marks.setdefault("process_start", start)
        out = []
        for label, begin, end in PHASES:
            # A binary's row is written before its spawn: a phase that ends before it begins is not one.
            if begin in marks and end in marks and marks[end] >= marks[begin]:
                out.append((label, (marks[end] - marks[begin]) * 1000))
        return out

    def step_phases(self) -> Dict[str, float]:
        """``{phase: ms}`` of a run that is a flow's step (no host start-up; ``IN_ALL``: its whole kernel run)."""
        phases = {label: round(ms, 2) for label, ms in self.phases(with_start_up=False)}
        if self.marks:
            phases[IN_ALL] = round((max(self.marks.values()) - min(self.marks.values())) * 1000, 2)
        return phases

    def report(self) -> str:
        """Return the breakdown as lines for people."""
        phases = self.phases()
        first = min(self.marks.values(), default=0.0)
        start = process_start_monotonic()
        total = (max(self.marks.values(), default=0.0) - (start if start is not None else first)) * 1000
        lines = [f"lute-kernel profile: {total:.0f} ms in all"]
        lines += [f"  {label:<40} {ms:8.1f} ms" for label, ms in phases]
        return "\n".join(lines)


def steps_report(steps: Sequence[Mapping[str, float]]) -> str:
    """Return the breakdown of many runs (a flow's steps' ``step_phases``) as lines: each phase's median."""
    if not steps:
        return "lute-kernel profile: no step reported where its time went (only local steps do)"
    lines = [f"lute-kernel profile: {len(steps)} steps, the median of each phase"]
    for label in [*(label for label, _, _ in PHASES), IN_ALL]:
        values = [float(step[label]) for step in steps if label in step]
        if values:
            lines.append(f"  {label:<40} {_median(values):8.1f} ms  ({len(values)} steps)")
    return "\n".join(lines)


def _median(values: List[float]) -> float:  # not statistics': it costs the run path a few ms of imports
    ordered, middle = sorted(values), len(values) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def profiling_requested(env: Optional[Dict[str, str]] = None) -> bool:
    """Return True when ``LUTE_PROFILE`` asks for the breakdown."""
    value = (env if env is not None else os.environ).get("LUTE_PROFILE", "")
    return value not in ("", "0", "false", "no")
