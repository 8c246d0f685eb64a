"""How ``images build`` looks on a terminal: each build step with a spinner and its elapsed time.

Owns the live display of image builds: every step apptainer announces becomes a line with a spinner
that turns into a tick when the next step starts, each with its elapsed time; the builder's status
lines print above. Apptainer's own output then goes only to the build log (its path is printed), so
a terminal shows one or the other, never both; off a terminal the builder prints plain step lines
and the raw output (`lute_kernel.images.build_steps.print_step`). Must not decide what to build.
"""

from __future__ import annotations

from types import TracebackType
from typing import Dict, Optional, Type

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

__all__ = ["BuildDisplay"]


class BuildDisplay:
    """A context manager whose `status`, `step` and `output` are the builder's sinks on a terminal."""

    def __init__(self, console: Optional[Console] = None) -> None:
        self.console = console or Console(highlight=False)
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/green]"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._current: Dict[str, TaskID] = {}

    def __enter__(self) -> BuildDisplay:
        self.progress.start()
        return self

    def __exit__(
        self, kind: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        for image in list(self._current):
            self._end(image)
        self.progress.stop()

    def status(self, text: str) -> None:
        """Print one of the builder's status lines above the steps."""
        self.console.print(Text(text))

    def output(self, chunk: bytes) -> None:
        """Apptainer's raw output: kept in the build log only, while steps are shown."""

    def _end(self, image: str) -> None:
        task = self._current.pop(image, None)
        if task is not None:
            self.progress.update(task, total=1, completed=1)

    def step(self, image: str, step: Optional[str], seconds: float) -> None:
        """Finish the image's previous step and start showing ``step`` (None: the build ended)."""
        self._end(image)
        if step is not None:
            self._current[image] = self.progress.add_task(f"{image}: {step}", total=None)
