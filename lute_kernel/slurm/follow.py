"""Following a submitted job to its end: its state changes and its output, as they happen.

Polls, with the interval as a parameter: Slurm offers no event to wait on (``sbatch --wait`` and
``srun`` poll slurmctld too), and asking every few seconds is what Slurm's own tools do. The loop
is bounded: it ends when the job reaches a final state, or when ``max_wait_s`` runs out.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

from lute_kernel.slurm.commands import JobState, SlurmError, query_job

StateSink = Callable[[JobState], None]
OutputSink = Callable[[str], None]


class OutputTail:
    """Reads what a growing file gained since the last read; hands out whole lines until the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self, *, final: bool = False) -> str:
        """Return the new complete lines (and, when ``final``, the unterminated rest)."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            chunk = b""
        self.offset += len(chunk)
        data = self.partial + chunk
        cut = len(data) if final else data.rfind(b"\n") + 1
        self.partial = data[cut:]
        return data[:cut].decode(errors="replace")


def follow_job(
    job_id: str,
    output: Path,
    *,
    poll_seconds: float,
    on_state: StateSink,
    on_output: OutputSink,
    max_wait_s: Optional[float] = None,
    query: Callable[[str], JobState] = query_job,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> JobState:
    """Poll ``job_id`` until it ends; report each new state and each new piece of its output.

    Returns the final state; raises SlurmError when ``max_wait_s`` passes first (the job goes on).
    """
    tail = OutputTail(output)
    deadline = None if max_wait_s is None else clock() + max_wait_s
    last: Optional[str] = None
    while True:
        state = query(job_id)
        text = tail.read(final=state.final)
        if text:
            on_output(text)
        if state.state != last:
            on_state(state)
            last = state.state
        if state.final:
            return state
        if deadline is not None and clock() >= deadline:
            raise SlurmError(f"job {job_id} is still {state.state} after {max_wait_s:g} s; it goes on")
        sleep(poll_seconds)
