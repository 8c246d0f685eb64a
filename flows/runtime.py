"""One flow run's inputs and state, without Prefect: its options, its checked plan, and each step's run.

Owns :class:`FlowOptions` (what ``lute_dag``'s parameters say), :func:`prepare_flow` (site,
environment, run type and DAQ, the DAG expanded and the whole flow checked — what the CLI does
before importing Prefect, and the flow again when a worker starts it), and :class:`FlowRuntime`,
which runs one step through its backend: it writes a sweep run's derived config, posts the step's
status to the ARP's counters, forwards the Task's log lines as they come and keeps every attempt's
result. The experiment and run given to the flow are ``EXPERIMENT``, ``RUN`` and ``RUN_NUM`` in
every step's environment, so ``{{ $EXPERIMENT }}``/``{{ $RUN }}`` resolve to them on every backend.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from flows.arp import SECRET_VARIABLES, ArpContext, post_counters, status_items
from flows.backends.base import Backend, NodeRequest, NodeResult, RunningNodes
from flows.dag_yaml import load_dag
from flows.graph import expand
from flows.rules import NodeState
from flows.run_info import RunInfo, fetch_run_info
from flows.sweep_config import FLOWS_DIR, derived_config_text, write_derived_config
from flows.validation import FlowPlan, plan_flow
from lute_kernel.config import load_config
from lute_kernel.errors import InputError
from lute_kernel.registry import Registry
from lute_kernel.sites import SiteProfile, load_site
from lute_kernel.task_lookup import registry_for


@dataclass(frozen=True)
class FlowOptions:
    """What one flow run is asked to do (``lute_dag``'s parameters; None: the site's default)."""

    dag: str
    config: str
    experiment: Optional[str] = None
    run: Optional[str] = None
    run_type: Optional[str] = None
    daq: Optional[str] = None
    backend: Optional[str] = None
    site: Optional[str] = None
    runtime: Optional[str] = None
    max_parallel: Optional[int] = None
    retries: Optional[int] = None
    retry_delay: Optional[float] = None
    allow_unknown: bool = False
    sbatch_args: Tuple[str, ...] = ()


@dataclass(frozen=True)
class PreparedFlow:
    """A flow run ready to start: options resolved, environment made, every step checked."""

    options: FlowOptions
    site: SiteProfile
    backend: str
    plan: FlowPlan
    host_env: Mapping[str, str]
    run_info: RunInfo
    registry: Registry = field(repr=False, compare=False)

    @property
    def max_parallel(self) -> int:
        """Steps run at once: the option, the site's, else the CPUs (local) or 64 (slurm)."""
        given = self.options.max_parallel or self.site.flows.max_parallel
        if given:
            return max(1, given)
        return max(1, os.cpu_count() or 1) if self.backend == "local" else 64

    def retries(self, step_retries: Optional[int]) -> int:
        """A step's retries: its own ``retries:``, else the option, else the site's."""
        if step_retries is not None:
            return step_retries
        return self.options.retries if self.options.retries is not None else self.site.flows.retries

    @property
    def retry_delay(self) -> float:
        """Seconds between retries."""
        given = self.options.retry_delay
        return given if given is not None else self.site.flows.retry_delay_s


def run_number(run: str) -> str:
    """Return the run number of ``RUN_NUM``-style text: the ARP's ``12_2026-11-22T10:00`` is run 12."""
    return run.split("_", 1)[0]


def step_environment(base: Mapping[str, str], experiment: Optional[str], run: Optional[str]) -> Dict[str, str]:
    """Return the host environment of every step: ``base`` without secrets, with the run's variables.

    As upstream's launch scripts export them: ``EXPERIMENT``, and ``RUN`` and ``RUN_NUM`` as the
    plain run number (an ARP ``RUN_NUM`` of ``12_<stamp>`` becomes ``12``).
    """
    env = {key: value for key, value in base.items() if key not in SECRET_VARIABLES}
    if experiment:
        env["EXPERIMENT"] = experiment
    run = run or env.get("RUN_NUM") or env.get("RUN")
    if run:
        env["RUN"] = env["RUN_NUM"] = run_number(run)
    return env


def prepare_flow(
    options: FlowOptions,
    base_env: Mapping[str, str],
    *,
    authorization: Optional[str] = None,
    registry: Optional[Registry] = None,
    mode: str = "run",
    all_branches: bool = False,
) -> PreparedFlow:
    """Resolve and check a flow run; raise InputError (nothing started, nothing written) when it cannot run.

    ``mode="deploy"`` checks only what does not depend on the run (``flows.validation``);
    ``all_branches`` takes every branch of every branch point (to check them all).
    """
    site = load_site(options.site)
    backend = options.backend or site.flows.backend
    if backend not in ("local", "slurm"):
        raise InputError(f"unknown backend {backend!r}: local or slurm")
    env = step_environment(base_env, options.experiment, options.run)
    experiment = env.get("EXPERIMENT")
    dag = load_dag(options.dag)
    run_info = RunInfo()
    needs = (dag.has_branch("run_type") and options.run_type is None) or (dag.has_branch("daq") and options.daq is None)
    if needs and not all_branches:
        run_info = fetch_run_info(site.flows.elog_runs_url, experiment, env.get("RUN"), authorization)
    graph = expand(
        dag, run_type=options.run_type or run_info.run_type, daq=options.daq or run_info.daq, all_branches=all_branches
    )
    # Only the DAG's Tasks' modules (the whole catalogue took ~145 ms here); same answers and errors.
    registry = registry or registry_for(step.task_name for step in graph.steps)
    site_for_plan = site if not options.sbatch_args else _with_sbatch_args(site, options.sbatch_args)
    plan = plan_flow(
        graph,
        Path(options.config),
        registry=registry,
        site=site_for_plan,
        backend=backend,
        runtime=options.runtime,
        host_env=env,
        experiment=experiment,
        allow_unknown=options.allow_unknown,
        mode=mode,
    ).check()
    return PreparedFlow(options, site_for_plan, backend, plan, env, run_info, registry)


def _with_sbatch_args(site: SiteProfile, args: Tuple[str, ...]) -> SiteProfile:
    flows = site.flows.model_copy(update={"sbatch_args": [*site.flows.sbatch_args, *args]})
    return site.model_copy(update={"flows": flows})


@dataclass(frozen=True)
class FlowEvent:
    """What the CLI's live table hears: a step's state (with its result) or one of its log lines."""

    kind: str  # "state", "log" or "progress" (text: "done/total message")
    label: str
    task: str
    state: NodeState = NodeState.PENDING
    reason: str = ""
    result: Optional[NodeResult] = None
    level: str = "INFO"
    text: str = ""
    attempt: int = 0


Observer = Callable[[FlowEvent], None]
LogLine = Callable[[str, str], None]


def ignore(event: FlowEvent) -> None:
    """Drop an event (when nobody watches: a deployment's run)."""


def first_request(prepared: PreparedFlow) -> Optional[NodeRequest]:
    """The request of the step a flow run starts first (a root of its DAG, not a sweep run), or None.

    What a local flow's node server may start before Prefect is even imported (``NodeServer.expect``);
    the same request ``FlowRuntime`` makes for that step.
    """
    plan = prepared.plan
    for planned in plan.steps:
        if planned.step.upstream or planned.task is None:
            continue
        if planned.step.params:
            return None
        return NodeRequest(
            label=planned.step.label,
            task=planned.task,
            config=str(plan.config.resolve()),
            site=prepared.site.name,
            runtime=prepared.options.runtime,
            host_env=prepared.host_env,
            sbatch_args=planned.sbatch_args,
            work_dir=plan.work_dir,
        )
    return None


class FlowRuntime:
    """Runs the steps of one prepared flow through its backend; thread-safe (one Prefect task per step)."""

    def __init__(
        self,
        prepared: PreparedFlow,
        backend: Backend,
        *,
        run_folder: str,
        arp: Optional[ArpContext] = None,
        observer: Observer = ignore,
    ) -> None:
        self.prepared = prepared
        self.backend = backend
        self.arp = arp or ArpContext()
        self.observer = observer
        self.running = RunningNodes()
        self.results: Dict[int, NodeResult] = {}
        self.attempts: Dict[int, int] = {}
        self.warnings: List[str] = []
        self._lock = threading.Lock()
        self.folder = Path(prepared.plan.work_dir) / FLOWS_DIR / run_folder
        """This flow run's folder: its sweep runs' configs and, at the end, its record (``flow.json``)."""
        self.started = datetime.now(timezone.utc)
        self._requests = self._make_requests(self.folder)

    def _make_requests(self, folder: Path) -> Dict[int, NodeRequest]:
        plan = self.prepared.plan
        config = None
        requests: Dict[int, NodeRequest] = {}
        for planned in plan.steps:
            if planned.task is None:
                continue
            path = str(plan.config.resolve())
            if planned.step.params:  # a sweep run reads its own config: the user's, with its values
                config = config or load_config(plan.config, env=self.prepared.host_env)
                text = derived_config_text(config, planned.task, planned.step.label, planned.step.params)
                path = str(write_derived_config(folder, planned.step.label, text))
            requests[planned.step.id] = NodeRequest(
                label=planned.step.label,
                task=planned.task,
                config=path,
                site=self.prepared.site.name,
                runtime=self.prepared.options.runtime,
                host_env=self.prepared.host_env,
                sbatch_args=planned.sbatch_args,
                work_dir=plan.work_dir,
            )
        return requests

    def request(self, step_id: int) -> NodeRequest:
        """Return what the step runs."""
        return self._requests[step_id]

    def task_of(self, step_id: int) -> Optional[str]:
        """Return the Task class name a step runs (None: a Task this kernel does not ship)."""
        request = self._requests.get(step_id)
        return request.task if request else None

    def can_retry(self, step_id: int) -> bool:
        """A failed attempt is retried unless the flow is being cancelled or the attempt was cancelled."""
        last = self.results.get(step_id)
        return not self.running.cancelled and (last is None or last.status is not NodeState.CANCELLED)

    def run_step(self, step_id: int, log: LogLine) -> NodeResult:
        """Run one attempt of a step to its end; return (and keep) its result."""
        request = self._requests[step_id]
        with self._lock:
            attempt = self.attempts[step_id] = self.attempts.get(step_id, 0) + 1
        if self.running.cancelled:
            result = NodeResult(NodeState.CANCELLED, request.task, reason="the flow run was cancelled")
            self.results[step_id] = result
            return result
        self._state(request, NodeState.RUNNING, attempt, reason=f"attempt {attempt}" if attempt > 1 else "")
        self._post(request.task, "RUNNING")

        def on_line(level: str, text: str) -> None:
            if level == "PROGRESS":  # a bar in the flow's live table; a plain line in Prefect's log
                log("INFO", f"progress {text}")
                self.observer(FlowEvent("progress", request.label, request.task, text=text, attempt=attempt))
                return
            log(level, text)
            self.observer(FlowEvent("log", request.label, request.task, level=level, text=text, attempt=attempt))

        try:
            result = self.backend.run(request, on_line, self.running, f"{step_id}:{attempt}")
        except Exception as exc:  # a backend that breaks fails its step, not the flow
            result = NodeResult(NodeState.FAILED, request.task, reason=f"{type(exc).__name__}: {exc}")
        result.extra["attempt"] = attempt
        self.results[step_id] = result
        log("INFO" if result.status is NodeState.COMPLETED else "ERROR", result.line)
        self._post(request.task, result.status.value, result.summary)
        return result

    def _state(self, request: NodeRequest, state: NodeState, attempt: int, reason: str = "") -> None:
        self.observer(FlowEvent("state", request.label, request.task, state=state, reason=reason, attempt=attempt))

    def _post(self, task: str, status: str, summary: Any = None) -> None:
        problem = post_counters(self.arp, status_items(task, status, summary))
        if problem:
            with self._lock:
                self.warnings.append(problem)


def with_options(options: FlowOptions, **changes: Any) -> FlowOptions:
    """Return ``options`` with ``changes``."""
    return replace(options, **changes)
