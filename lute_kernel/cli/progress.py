"""Showing runs as they happen: a rich progress bar on a terminal, plain lines otherwise — never both.

Owns how a run's events (`RunEvent`: log, progress, stdout/stderr, status) reach people. A
`RunDisplay` decides once, from its output stream, whether it is a terminal: there, each run (and
each MPI rank of it) that reports progress gets a bar (done/total, the Task's message, elapsed time)
and every other event is printed above the bars; elsewhere (a Slurm log, a pipe, CI) each event is
one plain line, progress included (``progress [3/10] step 2``), and no escape code is written. Used
by ``lute-kernel run`` and meant for ``lute-kernel flow run``: one display, one `sink` per node
(its label prefixes the node's lines and names its bars); a caller that already runs a rich ``Live``
passes ``live=False`` and shows `progress` inside it. Safe to feed from several threads. Must not
run anything or decide statuses. rich is imported only for bars: plain output costs a run nothing.
"""

from __future__ import annotations

import os
import sys
import threading
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Dict, Optional, Tuple, Type

from lute_kernel.events import EventSink, RunEvent

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["RunDisplay", "plain_line", "wants_bar"]

LEVEL_STYLES = {"WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}


def wants_bar(stream: IO[str]) -> bool:
    """Return whether ``stream`` is a terminal that can show a live bar (not a pipe, file or dumb terminal)."""
    try:
        return stream.isatty() and os.environ.get("TERM", "") not in ("dumb", "unknown")
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def plain_line(event: RunEvent, label: str = "") -> str:
    """Return the plain line of an event (what a Slurm log shows), e.g. ``[2] INFO    read 100 values``."""
    prefix = f"{label}: " if label else ""
    rank = f"[{event.rank}] " if event.rank else ""
    if event.kind == "log":
        return f"{prefix}{rank}{event.level:<7} {event.text}"
    if event.kind == "progress":
        return f"{prefix}{rank}progress {event.text}"
    if event.kind == "status":
        return f"lute-kernel: {prefix}{event.text}"
    return f"{prefix}{rank}{event.kind}: {event.text}"


def _count(done: Optional[float], total: Optional[float]) -> str:
    shown = "" if done is None else f"{done:g}"
    return f"{shown}/{total:g}" if total is not None else shown


class RunDisplay:
    """Where the events of one or more runs are shown (a context manager around the live bars).

    Args:
        stream: Where lines and bars go (default: stdout); Task stderr lines go to ``stderr``.
        stderr: Where a Task's stderr lines go in plain mode (default: stderr).
        bar: Force bars (True) or plain lines (False); default: bars when ``stream`` is a terminal.
        console: Print through this console (a caller's own, e.g. the one its ``Live`` uses).
        live: Start the bars' live display (False: the caller shows `progress` in its own ``Live``).
    """

    def __init__(
        self,
        stream: Optional[IO[str]] = None,
        *,
        stderr: Optional[IO[str]] = None,
        bar: Optional[bool] = None,
        console: Optional[Console] = None,
        live: bool = True,
    ) -> None:
        self.stream = stream or sys.stdout
        self.stderr = stderr or sys.stderr
        self.bar = wants_bar(self.stream) if bar is None else bar
        self.console: Optional[Console] = console
        self.progress: Optional[Progress] = None
        if self.bar:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.console = console or Console(file=self.stream, highlight=False)
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[count]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
        self._live = live
        self._bars: Dict[Tuple[str, int], TaskID] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> RunDisplay:
        if self.progress is not None and self._live:
            self.progress.start()
        return self

    def __exit__(
        self, kind: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        if self.progress is not None and self._live:
            self.progress.stop()

    def sink(self, label: str = "") -> EventSink:
        """Return the event sink of one run; ``label`` (a flow node's name) prefixes its lines and bars."""

        def show(event: RunEvent) -> None:
            self.show(event, label)

        return show

    def show(self, event: RunEvent, label: str = "") -> None:
        """Show one event of the run named ``label``."""
        if self.progress is None or self.console is None:
            out = self.stderr if event.kind == "stderr" else self.stream
            print(plain_line(event, label), file=out, flush=True)
            return
        if event.kind == "progress":
            self._advance(event, label)
            return
        style = LEVEL_STYLES.get(event.level, "") if event.kind == "log" else ""
        if event.kind == "stderr":
            style = "dim"
        elif event.kind == "status":
            style = "bold red" if event.level == "ERROR" else "bold"
        self._print(plain_line(event, label), style)

    def _print(self, text: str, style: str) -> None:
        from rich.text import Text

        assert self.console is not None
        self.console.print(Text(text, style=style))

    def line(self, text: str, *, style: str = "") -> None:
        """Print a line of the caller's own (above the bars on a terminal)."""
        if self.progress is None:
            print(text, file=self.stream, flush=True)
        else:
            self._print(text, style)

    def _advance(self, event: RunEvent, label: str) -> None:
        assert self.progress is not None
        name = " ".join(part for part in (label, f"rank {event.rank}" if event.rank else "") if part)
        description = f"{name}: {event.message}" if name and event.message else (name or event.message)
        fields: Dict[str, Any] = {"count": _count(event.done, event.total)}
        with self._lock:
            key = (label, event.rank)
            if key not in self._bars:
                self._bars[key] = self.progress.add_task(description, total=event.total, **fields)
            self.progress.update(
                self._bars[key],
                description=description,
                completed=event.done or 0.0,
                total=event.total,
                **fields,
            )
