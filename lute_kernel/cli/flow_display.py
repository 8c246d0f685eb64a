"""The live table of ``lute-kernel flow run``: step, Task, state, seconds, DB row — and the steps' log lines.

Owns printing a flow run for people. Events come from the flow's threads (one per running step),
so every update takes a lock. On a terminal the table stays at the bottom and refreshes while
log lines scroll above it; elsewhere (a pipe, CI, an ARP job's log) each event is one plain line
and the table is printed once at the end.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rich.console import Console
from rich.live import Live
from rich.table import Table

FAILED = ("FAILED", "TIMEDOUT", "CANCELLED")
_STYLES = {"COMPLETED": "green", "FAILED": "red", "TIMEDOUT": "red", "CANCELLED": "yellow", "SKIPPED": "dim"}


@dataclass
class _Row:
    task: str
    state: str = "PENDING"
    seconds: Optional[float] = None
    row: Optional[int] = None
    note: str = ""
    started: Optional[float] = None
    attempt: int = 0
    progress: str = ""


def _console() -> Console:
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=140)  # a log file: room for the reasons, no wrapping at 80 columns
    return console


class FlowDisplay:
    """Receives the flow's events (``flows.runtime.FlowEvent``) and shows them."""

    def __init__(self, steps: Sequence[Tuple[str, str]], console: Optional[Console] = None) -> None:
        self.console = console or _console()
        self.rows: Dict[str, _Row] = {label: _Row(task) for label, task in steps}
        self._lock = threading.RLock()
        self._live: Optional[Live] = None
        self.phases: List[Dict[str, float]] = []  # each finished attempt's breakdown (``flow run --profile``)

    def __enter__(self) -> FlowDisplay:
        if self.console.is_terminal:
            self._live = Live(self.table(), console=self.console, refresh_per_second=4, get_renderable=self.table)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            if self._live is not None:
                self._live.__exit__(None, None, None)
                self._live = None
            else:
                self.console.print(self.table())

    def __call__(self, event: Any) -> None:
        """Take one event: a step's state, or one of its log lines."""
        with self._lock:
            row = self.rows.setdefault(event.label, _Row(event.task))
            if event.kind == "progress":
                row.progress = event.text
                if self._live is None:  # no terminal: a plain line (a Slurm log, CI), never a bar
                    self._print(f"[{event.label}] progress {event.text}")
                return
            if event.kind == "log":
                self._print(
                    f"[{event.label}] {event.level:<7} {event.text}", style="red" if event.level == "ERROR" else ""
                )
                return
            row.state = event.state.value
            row.attempt = max(row.attempt, event.attempt)
            if row.state != "RUNNING":
                row.progress = ""
            if event.state.value == "RUNNING":
                row.started = time.monotonic()
                row.note = f"attempt {event.attempt}" if event.attempt > 1 else ""
                self._print(f"[{event.label}] RUNNING {row.task}" + (f" ({row.note})" if row.note else ""))
                return
            result = event.result
            if result is not None:
                row.seconds, row.row = result.seconds, result.row_id
                if result.extra.get("phases"):
                    self.phases.append(result.extra["phases"])
            row.note = event.reason if row.state != "COMPLETED" else ""
            if row.attempt > 1:
                row.note = f"{row.attempt} attempts" + (f"; {row.note}" if row.note else "")
            took = f" in {row.seconds:.2f} s" if row.seconds is not None else ""
            where = f" (row {row.row})" if row.row is not None else ""
            why = f": {row.note}" if row.note else ""
            self._print(f"[{event.label}] {row.state}{took}{where}{why}", style=_STYLES.get(row.state, ""))

    def _print(self, text: str, style: str = "") -> None:
        target = self._live.console if self._live is not None else self.console
        target.print(text, style=style or None, markup=False, highlight=False, soft_wrap=True)

    def table(self) -> Table:
        """Return the table as it stands."""
        table = Table(title=None)
        for name, justify in (
            ("step", "left"),
            ("Task", "left"),
            ("state", "left"),
            ("seconds", "right"),
            ("DB row", "right"),
            ("progress", "left"),
        ):
            table.add_column(name, no_wrap=True, justify=justify)  # type: ignore[arg-type]
        table.add_column("note", overflow="fold")
        with self._lock:
            now = time.monotonic()
            for label, row in self.rows.items():
                seconds = row.seconds
                if seconds is None and row.state == "RUNNING" and row.started is not None:
                    seconds = now - row.started
                table.add_row(
                    label,
                    row.task,
                    f"[{_STYLES.get(row.state, '')}]{row.state}[/]" if _STYLES.get(row.state) else row.state,
                    f"{seconds:.2f}" if seconds is not None else "",
                    str(row.row) if row.row is not None else "",
                    progress_bar(row.progress),
                    row.note,
                )
        return table

    def profile_report(self) -> str:
        """Where the steps' time went: each phase's median over the steps that ran (``flow run --profile``)."""
        from lute_kernel.profile import steps_report

        with self._lock:
            return steps_report(self.phases)

    def failed(self) -> List[str]:
        """Return the steps that ran and did not complete (or were cancelled before they started)."""
        with self._lock:
            return [label for label, row in self.rows.items() if row.state in FAILED]


def progress_bar(text: str, width: int = 12) -> str:
    """Return ``"3/10 message"`` as a bar (``▰▰▰▱▱▱▱ 3/10 message``); unknown totals stay text."""
    count, _, message = text.partition(" ")
    done, _, total = count.partition("/")
    try:
        fraction = min(1.0, max(0.0, float(done) / float(total)))
    except (ValueError, ZeroDivisionError):
        return text
    filled = round(fraction * width)
    return f"{'▰' * filled}{'▱' * (width - filled)} {count} {message}".rstrip()
