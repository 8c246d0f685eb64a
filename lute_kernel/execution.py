"""What one launch is given and what it gives back: its limits, its outcome, and the group signal it uses.

Owns ``ExecutionSettings`` (timeout, grace, socket root, size cap, ranks, transport), the
``ExecutionOutcome`` (the run's ``RunState`` — the one owner of its status — plus what was seen:
stderr tail, times, message counts, the timeline) and ``signal_group``. Plain data; no processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

from lute_kernel.ipc.protocol import DEFAULT_MAX_BYTES
from lute_kernel.profile import Timeline
from lute_kernel.run_state import RunState
from lute_kernel.task import TaskStatus


@dataclass
class ExecutionOutcome:
    """How one launch ended: the run's state (the one owner of its status) and what was seen."""

    state: RunState = field(default_factory=RunState)
    stderr_tail: List[str] = field(default_factory=list)
    start: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    end: Optional[datetime] = None
    messages: int = 0
    rejected_frames: int = 0
    timeline: Timeline = field(default_factory=Timeline)

    @property
    def status(self) -> TaskStatus:
        """The verdict so far (final once ``state.finish()`` ran)."""
        return self.state.verdict()[0]

    @property
    def reason(self) -> str:
        """Why the run ended as it did (empty for a clean completion)."""
        return self.state.verdict()[1]

    @property
    def exit_code(self) -> Optional[int]:
        """The launched process's exit code (negative: the signal that killed it)."""
        return self.state.exit_code

    @property
    def result(self) -> Optional[Dict[str, Any]]:
        """Rank 0's result message, if it sent one."""
        return self.state.result

    @property
    def error(self) -> Optional[Dict[str, Any]]:
        """The first error a rank reported, if any."""
        return self.state.error


@dataclass(frozen=True)
class ExecutionSettings:
    """Limits of one launch."""

    timeout_s: float
    grace_s: float = 10.0
    run_root: Optional[Path] = None
    max_bytes: int = DEFAULT_MAX_BYTES
    ranks: int = 1
    hello_timeout_s: float = 120.0
    transport: str = "ipc"
    tcp_host: Optional[str] = None


def signal_group(pgid: int, signum: int) -> None:
    """Send ``signum`` to a process group that may be gone already."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass
