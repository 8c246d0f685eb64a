"""What a backend is given and gives back: one step's request, its log lines, its small JSON result.

Owns :class:`NodeRequest` (the Task, its config — the user's, or a sweep run's derived one —,
site, runtime, host environment and sbatch options), :class:`NodeResult` (status, DB row, summary,
payload: what Prefect sees; lute.db stays the record) and :class:`RunningNodes`, where a running
step leaves the way to cancel it. Must not run anything.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Protocol, Tuple

from flows.rules import NodeState

LineSink = Callable[[str, str], None]
"""Called with (level name, text) for every log line of a running step."""


@dataclass(frozen=True)
class NodeRequest:
    """One step to run: ``lute-kernel run TASK -c CONFIG`` (local) or ``submit … --wait -- SBATCH`` (slurm)."""

    label: str
    task: str
    config: str
    site: str
    runtime: Optional[str]
    host_env: Mapping[str, str]
    sbatch_args: Tuple[str, ...] = ()
    work_dir: str = ""


@dataclass
class NodeResult:
    """How one attempt of a step ended, as small JSON-able data."""

    status: NodeState
    task: str
    row_id: Optional[int] = None
    db: str = ""
    summary: Any = ""
    payload: Any = None
    seconds: float = 0.0
    reason: str = ""
    exit_code: Optional[int] = None
    job_id: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> Dict[str, Any]:
        """Return the result as Prefect sees it (``status`` as its name)."""
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @property
    def line(self) -> str:
        """One line for logs: status, time, row."""
        row = f", row {self.row_id}" if self.row_id is not None else ""
        why = f": {self.reason}" if self.reason and self.status is not NodeState.COMPLETED else ""
        return f"{self.task} {self.status.value} in {self.seconds:.2f} s{row}{why}"


class Backend(Protocol):
    """Runs one step to its end; cancellable through ``running``."""

    name: str

    def run(self, request: NodeRequest, on_line: LineSink, running: RunningNodes, key: str) -> NodeResult:
        """Run ``request``, report its log lines, leave a canceller under ``key`` while it runs."""
        ...  # pragma: no cover

    def close(self) -> None:
        """Release what the backend holds (a node server, nothing)."""
        ...  # pragma: no cover


class RunningNodes:
    """The cancellers of the steps running now; cancelling the flow calls each once, even ones added later."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancellers: Dict[str, Callable[[int], None]] = {}
        self.signum: Optional[int] = None

    @property
    def cancelled(self) -> bool:
        """True once the flow was cancelled."""
        return self.signum is not None

    def add(self, key: str, cancel: Callable[[int], None]) -> None:
        """Register how to cancel the step ``key``; if the flow is cancelled already, cancel it now."""
        with self._lock:
            self._cancellers[key] = cancel
            signum = self.signum
        if signum is not None:
            cancel(signum)

    def remove(self, key: str) -> None:
        """The step ``key`` has ended."""
        with self._lock:
            self._cancellers.pop(key, None)

    def cancel_all(self, signum: int = signal.SIGTERM) -> int:
        """Cancel every running step (and every one that starts from now on); return how many were running."""
        with self._lock:
            if self.signum is None:
                self.signum = signum
            cancellers = list(self._cancellers.values())
        for cancel in cancellers:
            cancel(signum)
        return len(cancellers)
