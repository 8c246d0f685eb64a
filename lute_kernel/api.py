"""The library entry points the CLI and flows call: prepare, explain and run one Task.

Owns the path of one run: config → validated parameters → plan → tasklets → execute → record.
Holds no global state and never exits the interpreter: errors are exceptions (``InputError`` for
bad input, raised before anything is launched or written), outcomes are return values.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple, Union

from lute_kernel.cancel import CancelToken
from lute_kernel.config import LoadedConfig, load_config
from lute_kernel.errors import LaunchError
from lute_kernel.events import EventSink, RunEvent, ignore_events
from lute_kernel.executor import ExecutionOutcome, ExecutionSettings, execute
from lute_kernel.launchers import make_launcher
from lute_kernel.parameters import TaskParameters
from lute_kernel.plan import PYTHON, LaunchPlan, ProcessSpec, build_plan
from lute_kernel.prepared_info import done_row as done_row  # part of this API, kept there
from lute_kernel.prepared_info import explain as explain
from lute_kernel.profile import Timeline
from lute_kernel.ranks import choose_launch
from lute_kernel.recording import RunRecorder, failure_summary, keep_figures, post_summary
from lute_kernel.registry import Registry, discover
from lute_kernel.run_dirs import run_dir_name
from lute_kernel.runtimes import make_runtime
from lute_kernel.sites import SiteProfile, load_site
from lute_kernel.summaries import merge_summaries
from lute_kernel.task import TaskSpec, TaskStatus, ThirdPartyTask
from lute_kernel.task_files import write_task_files
from lute_kernel.task_lookup import registry_for
from lute_kernel.tasklets import run_tasklets
from lute_kernel.validation import validate_header, validate_parameters

if TYPE_CHECKING:
    from lute_kernel.early_launch import StartedLaunch

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class PreparedRun:
    """Everything known before launch: validated parameters and the exact plan."""

    spec: TaskSpec
    config: LoadedConfig
    params: TaskParameters
    plan: LaunchPlan
    request: Optional[Dict[str, Any]]
    site: SiteProfile
    timeline: Timeline = field(default_factory=Timeline)

    @property
    def work_dir(self) -> str:
        """The header's work_dir (where the DB lives)."""
        return self.params.lute_config.work_dir


@dataclass
class RunOutcome:
    """What ``run_task`` returns: the recorded row and the live result."""

    task_name: str
    status: TaskStatus
    summary: Any
    payload: Any
    row_id: Optional[int]
    db_path: Path
    exit_code: Optional[int]
    reason: str
    seconds: float
    not_recorded: str = ""
    """Why the run has no row (the DB refused it); empty when it was recorded."""
    figures: Tuple[str, ...] = ()
    """The JSON files of the figures the Task returned (``<work_dir>/figures/<Task>/<row>/…``)."""
    timeline: Timeline = field(default_factory=Timeline)
    """When the run passed each of its moments (``lute-kernel run --profile`` prints the breakdown)."""

    @property
    def ok(self) -> bool:
        """True when the Task completed."""
        return self.status == TaskStatus.COMPLETED


def _process_spec(
    spec: TaskSpec, params: TaskParameters, site: SiteProfile, run_dir: Optional[str] = None
) -> ProcessSpec:
    cls = spec.cls
    work_dir = params.lute_config.work_dir
    if issubclass(cls, ThirdPartyTask):
        argv, env = tuple(cls.build_argv(params)), {}
    else:
        argv, env = (PYTHON, "-m", "lute_kernel.worker"), {"LUTE_TASK": spec.name, "PYTHONUNBUFFERED": "1"}
    return ProcessSpec(
        argv=argv,
        env=env,
        passthrough_env=tuple(cls.env),
        cwd=work_dir,
        resources=cls.resources,
        image=cls.image,
        # Planned, not made: a container's argv names it; the executor creates it, mode 0700.
        run_dir=str(site.socket_root() / (run_dir or run_dir_name())),
        read_only_paths=(spec.tasks_dir or os.path.dirname(inspect.getfile(cls)),),
        writable_paths=(work_dir,),
    )


def prepare(
    task_name: str,
    config_path: PathLike,
    *,
    site: Optional[str] = None,
    runtime: Optional[str] = None,
    registry: Optional[Registry] = None,
    host_env: Optional[Mapping[str, str]] = None,
    launcher: Optional[str] = None,
    ranks: Optional[int] = None,
    run_dir_name: Optional[str] = None,
) -> PreparedRun:
    """Validate everything and build the plan; raise InputError on bad input. Launches nothing.

    ``run_dir_name``: the run directory's name (an early start's); by default a new one.
    """
    timeline = Timeline()
    timeline.mark("prepare_start")
    registry = registry or registry_for([task_name])  # imports that Task's module only
    spec = registry.get(task_name)
    env = os.environ if host_env is None else host_env
    config = load_config(config_path, env=env)
    profile = load_site(site)  # before the header: the site's work_dir_default fills an empty work_dir
    header = validate_header(config, site=profile, env=env)
    params = validate_parameters(spec, config, header)
    from lute_kernel.db import check_recordable  # what the DB would refuse is refused before launch

    check_recordable(params.lute_config.work_dir, spec.name, params.task_values(), header=header.db_header())
    profile.check_run_dir_root()  # a socket must fit there: refused now, not at launch
    choice = choose_launch(spec.cls, profile, env, launcher=launcher, ranks=ranks)
    plan = build_plan(
        replace(_process_spec(spec, params, profile, run_dir_name), resources=choice.resources),
        make_runtime(runtime or profile.runtime, profile),
        make_launcher(choice.launcher, profile),
        env,
    )
    request = None
    if not issubclass(spec.cls, ThirdPartyTask):
        request = {
            "task": spec.name,
            "module": spec.module,
            "class": spec.cls.__name__,
            "tasks_dir": spec.tasks_dir,
            "params": params.model_dump(mode="json"),
        }
    timeline.mark("prepared")
    return PreparedRun(spec, config, params, plan, request, profile, timeline)


def _tasklet_values(params: TaskParameters) -> Dict[str, Any]:
    return params.model_dump(mode="python")


def launch_settings(prepared: PreparedRun) -> ExecutionSettings:
    """The executor's settings for this run: time limit, grace, socket limits and transport, ranks."""
    return ExecutionSettings(
        timeout_s=float(prepared.params.lute_config.task_timeout),
        grace_s=prepared.site.kill_grace_seconds,
        run_root=prepared.site.socket_root(),
        max_bytes=prepared.site.ipc_max_bytes,
        ranks=prepared.plan.ranks,
        hello_timeout_s=prepared.site.mpi.hello_timeout_s,
        transport=prepared.site.mpi.transport,
        tcp_host=prepared.site.mpi.tcp_host,
    )


def _launch(
    prepared: PreparedRun,
    recorder: RunRecorder,
    on_event: EventSink,
    cancel: Optional[CancelToken],
    early: Optional[StartedLaunch],
) -> ExecutionOutcome:
    steps = (
        ("writing the Task's files", lambda: write_task_files(prepared.params)),  # templates
        ("a 'before' tasklet", lambda: run_tasklets(list(prepared.spec.cls.before), _tasklet_values(prepared.params))),
    )
    for what, step in steps:
        try:
            step()
        except Exception as exc:
            outcome = ExecutionOutcome(end=datetime.now(timezone.utc))
            outcome.state.launch_failed(f"{what} failed: {type(exc).__name__}: {exc}")
            return outcome
    try:
        recorder.begin_soon()  # the writer process writes the RUNNING row while the spawn goes on
        return execute(
            prepared.plan,
            prepared.request,
            launch_settings(prepared),
            on_event=on_event,
            cancel=cancel,
            admit=recorder.begin,
            early=early,
        )
    except LaunchError as exc:
        outcome = ExecutionOutcome(end=datetime.now(timezone.utc))
        outcome.state.launch_failed(str(exc))
        return outcome


def _completed_result(prepared: PreparedRun, outcome: ExecutionOutcome) -> Tuple[Any, Any]:
    """Fill the result of a completed run from the parameters and run the ``after`` tasklets."""
    result = outcome.result or {}
    summary: Any = result.get("summary", "")
    payload: Any = result.get("payload")
    if payload is None:
        payload = prepared.params.result_from_params()
    if not summary and prepared.params.result_summary:
        summary = prepared.params.result_summary
    try:
        extra = run_tasklets(list(prepared.spec.cls.after), _tasklet_values(prepared.params))
        summary = merge_summaries(summary, {k: v for r in extra if isinstance(r, dict) for k, v in r.items()})
    except Exception as exc:
        outcome.state.after_tasklet_failed(f"an 'after' tasklet failed: {type(exc).__name__}: {exc}")
    return summary, payload


def run_prepared(
    prepared: PreparedRun,
    *,
    on_event: EventSink = ignore_events,
    cancel: Optional[CancelToken] = None,
    early: Optional[StartedLaunch] = None,
) -> RunOutcome:
    """Run a prepared Task to the end and record it.

    ``early``: its launch, started before validation and found identical to the plan
    (``EarlyStart.take``); it is adopted, not spawned again.

    The row is written RUNNING before any Task code runs and finished afterwards, whatever
    happened; if the DB refuses it, the outcome says so (``recorded`` False, ``not_recorded``
    the reason) instead of raising.
    """
    recorder = RunRecorder(prepared)
    outcome = _launch(prepared, recorder, on_event, cancel, early)
    summary: Any = ""
    payload: Any = None
    if outcome.status == TaskStatus.COMPLETED:
        summary, payload = _completed_result(prepared, outcome)
    status = outcome.state.finish()
    if status != TaskStatus.COMPLETED:
        summary = failure_summary(outcome)
    because = f": {outcome.reason}" if outcome.reason else ""
    on_event(RunEvent("status", f"{prepared.spec.name} {status.value}{because}"))
    post_summary(prepared, summary, on_event)
    row_id, not_recorded = recorder.finish(outcome, summary, payload)
    if not_recorded:
        on_event(RunEvent("status", f"not recorded: {not_recorded}", level="ERROR"))
    figures = keep_figures(prepared, row_id, outcome, on_event)
    from lute_kernel.db import db_path  # imported by the recorder already

    for name, moment in outcome.timeline.marks.items():
        prepared.timeline.marks.setdefault(name, moment)
    prepared.timeline.mark("recorded")

    end = outcome.end or datetime.now(timezone.utc)
    return RunOutcome(
        task_name=prepared.spec.name,
        status=status,
        summary=summary,
        payload=payload,
        row_id=row_id,
        db_path=db_path(prepared.work_dir),
        exit_code=outcome.exit_code,
        reason=outcome.reason,
        seconds=(end - outcome.start).total_seconds(),
        not_recorded=not_recorded,
        figures=tuple(str(path) for path in figures),
        timeline=prepared.timeline,
    )


def run_task(
    task_name: str,
    config_path: PathLike,
    *,
    site: Optional[str] = None,
    runtime: Optional[str] = None,
    on_event: EventSink = ignore_events,
    cancel: Optional[CancelToken] = None,
    registry: Optional[Registry] = None,
    launcher: Optional[str] = None,
    ranks: Optional[int] = None,
) -> RunOutcome:
    """Validate, launch, wait and record one Task. Raises InputError (nothing launched) on bad input."""
    prepared = prepare(
        task_name, config_path, site=site, runtime=runtime, registry=registry, launcher=launcher, ranks=ranks
    )
    return run_prepared(prepared, on_event=on_event, cancel=cancel)


def task_names(registry: Optional[Registry] = None) -> List[str]:
    """Return the names of every registered Task."""
    return sorted((registry or discover()).tasks)
