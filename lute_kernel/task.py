"""The Task base classes: what a Task author subclasses.

Owns ``Task`` (first-party Python code with a ``run()`` method), ``ThirdPartyTask`` (a binary
whose argv is built from its parameters), ``TaskResult`` and ``TaskStatus``. A Task talks to the
host only through a ``Reporter`` (the worker supplies one that speaks IPC; ``run_standalone``
supplies one that prints). Imported inside every image, so pydantic and the stdlib only; heavy
imports (numpy, psana, h5py) belong inside ``run()``.
"""

from __future__ import annotations

import enum
import logging
import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

from lute_kernel.argv import build_binary_argv
from lute_kernel.figures import ElogSummaryPlots
from lute_kernel.parameters import TaskParameters, ThirdPartyParameters
from lute_kernel.tasklets import Tasklet


class TaskStatus(str, enum.Enum):
    """Lifecycle states recorded in ``result.task_status`` (upstream LUTE's names)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMEDOUT = "TIMEDOUT"
    CANCELLED = "CANCELLED"


@dataclass
class TaskResult:
    """What a Task hands back: status, a summary (str or dict), a payload (any JSON-able data), figures."""

    task_name: str
    task_status: TaskStatus = TaskStatus.RUNNING
    summary: Any = ""
    payload: Any = None
    impl_schemas: str = ""
    figures: List[ElogSummaryPlots] = field(default_factory=list)
    """Summary plots for the report and the eLog (`Task.add_figures`)."""


class Reporter:
    """Where a Task's progress and data go. The worker's subclass sends them over IPC."""

    def progress(self, done: float, total: Optional[float], message: str, data: Any = None) -> None:
        """Report progress; ``data`` may hold numpy arrays (sent as raw buffers, never pickled)."""
        total_text = f"/{total:g}" if total is not None else ""
        print(f"progress {done:g}{total_text}: {message}", file=sys.stderr)


@dataclass(frozen=True)
class Resources:
    """What one launch of a Task asks for; launchers turn it into argv."""

    ranks: int = 1
    cpus_per_rank: int = 1
    gpus: int = 0


class Task:
    """Base of first-party Tasks. Subclass, declare ``Parameters`` and implement ``run()``.

    Class attributes:
        Parameters: the pydantic model of the Task's config section.
        image: the software environment (recipe name) the Task runs in.
        aliases: other names accepted on the command line (upstream managed-Task names).
        before / after: host-side tasklets run around the Task.
        env: extra environment variable names passed into the Task's process.
        resources: default resources (ranks, cpus, gpus); for MPI Tasks ranks > 1 overrides the
            allocation-derived default.
        mpi / min_ranks: an MPI Task, and the fewest ranks it can run with.
    """

    Parameters: ClassVar[type[TaskParameters]] = TaskParameters
    kind: ClassVar[str] = "python"
    image: ClassVar[str] = "base"
    aliases: ClassVar[Tuple[str, ...]] = ()
    before: ClassVar[Sequence[Tasklet]] = ()
    after: ClassVar[Sequence[Tasklet]] = ()
    env: ClassVar[Tuple[str, ...]] = ()
    resources: ClassVar[Resources] = Resources()
    mpi: ClassVar[bool] = False
    """True: an MPI Task, launched with srun/mpirun on several ranks."""
    min_ranks: ClassVar[int] = 1
    """Fewest ranks the Task can run with (e.g. psana2's parallel mode needs 3)."""

    def __init__(self, params: TaskParameters, reporter: Optional[Reporter] = None) -> None:
        self.params = params
        self.reporter = reporter or Reporter()
        self.result = TaskResult(task_name=type(self).__name__)
        self.log = logging.getLogger(f"lute.task.{type(self).__name__}")

    def run(self) -> None:
        """Do the work; set ``self.result`` fields. Raise to fail the Task."""
        raise NotImplementedError

    def progress(self, done: float, total: Optional[float] = None, message: str = "", data: Any = None) -> None:
        """Tell the host how far the Task is; arrays in ``data`` travel as raw buffers."""
        self.reporter.progress(done, total, message, data)

    def add_figures(self, display_name: str, figures: Any) -> ElogSummaryPlots:
        """Attach figures to the run's result, shown under ``display_name`` (``"scans/my_motor_scan"``).

        ``figures`` is one plotly Figure or figure dict ``{"data": [...], "layout": {...}}``, a list of
        them, or ``{name: figure}``. They go to the host as data with the result, are stored next to
        the DB, shown by ``lute-kernel report`` and, where the site says so, written for the eLog.
        Raises ``FigureError`` here for anything that is not a figure.
        """
        plots = ElogSummaryPlots(display_name, figures)
        self.result.figures.append(plots)
        return plots

    @classmethod
    def describe(cls) -> str:
        """Return the first line of the Task's docstring."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    @classmethod
    def run_standalone(cls, params: Dict[str, Any]) -> TaskResult:
        """Validate ``params`` and run the Task in this process, without the kernel (benchmarks, debugging)."""
        task = cls(cls.Parameters.model_validate(params))
        task.run()
        if task.result.task_status == TaskStatus.RUNNING:
            task.result.task_status = TaskStatus.COMPLETED
        return task.result


class ThirdPartyTask(Task):
    """Base of binary Tasks: the argv comes from the parameters; the kernel runs it directly."""

    Parameters: ClassVar[type[TaskParameters]] = ThirdPartyParameters
    kind: ClassVar[str] = "binary"

    @classmethod
    def build_argv(cls, params: TaskParameters) -> List[str]:
        """Return the binary's argv; override to add Task-specific rules."""
        if not isinstance(params, ThirdPartyParameters):
            raise TypeError(f"{cls.__name__}.Parameters must derive from ThirdPartyParameters")
        return build_binary_argv(params)


@dataclass
class TaskSpec:
    """A registered Task: its class, where it came from, and how the worker re-imports it."""

    name: str
    cls: type[Task]
    module: str
    source: str
    aliases: Tuple[str, ...] = ()
    tasks_dir: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
