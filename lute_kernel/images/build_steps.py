"""The steps of an image build, as apptainer announces them, with the time each began.

Owns reading ``apptainer build``'s raw output (bytes, in whatever chunks the pipe gives) line by
line and recognising its step lines (``INFO:    Running post scriptlet``, ``INFO:    Creating SIF
file...``): each is reported once, with the seconds since the build started, to a `StepSink`; the
end of the build is reported as a step of ``None``. Pure apart from the clock it is given; the
plain way to show a step (`print_step`) is here too, the CLI has a live one for terminals.
"""

from __future__ import annotations

import time
from typing import Callable, List, Optional

StepSink = Callable[[str, Optional[str], float], None]
"""``(image, step, seconds since the build started)``; ``step`` None: the build ended."""

STEP_PREFIX = b"INFO:"
MAX_LINE = 4096
"""Longest line kept while looking for a step (apt's progress lines have no newline for a while)."""

__all__ = ["BuildSteps", "StepSink", "print_step", "step_line"]


def step_line(image: str, step: str, seconds: float) -> str:
    """Return the plain line of one step: ``==> psana2: [  42.0 s] Running post scriptlet``."""
    return f"==> {image}: [{seconds:6.1f} s] {step}"


def print_step(image: str, step: Optional[str], seconds: float) -> None:
    """Print one build step with the time since the build began (plain: a log or a pipe reads it)."""
    if step is not None:
        print(step_line(image, step, seconds), flush=True)


class BuildSteps:
    """Feeds on one build's output and tells ``sink`` each step as it starts."""

    def __init__(self, image: str, sink: StepSink, clock: Callable[[], float] = time.monotonic) -> None:
        self.image = image
        self.sink = sink
        self.clock = clock
        self.start = clock()
        self.steps: List[str] = []
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        """Take the next piece of output."""
        data = self._partial + chunk
        *lines, rest = data.replace(b"\r", b"\n").split(b"\n")
        self._partial = rest[-MAX_LINE:]
        for line in lines:
            self._line(line)

    def _line(self, line: bytes) -> None:
        if not line.startswith(STEP_PREFIX):
            return
        text = line[len(STEP_PREFIX) :].decode("utf-8", "replace").strip()
        if text:
            self.steps.append(text)
            self.sink(self.image, text, self.clock() - self.start)

    def finish(self) -> None:
        """Report a last step line left without a newline, then the end of the build."""
        if self._partial:
            self._line(self._partial)
            self._partial = b""
        self.sink(self.image, None, self.clock() - self.start)
