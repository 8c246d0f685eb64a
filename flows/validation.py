"""The whole flow, checked before its first Task starts.

Checks Task names, config sections, every sweep run's parameters, slurm_params and each step's
launch plan. Owns :func:`plan_flow`, which turns a :class:`flows.graph.FlowGraph` and a config into a
:class:`FlowPlan` — per step: the Task it runs, its sbatch options, the exact command, what is
deferred, and its problems — and :meth:`FlowPlan.check`, which raises one :class:`FlowError`
naming the file, the node path and the field of every problem. A DB-backed default that finds no
row is deferred (resolved when the step starts) when a step before it runs the Task it reads
from; any other error is a problem. Validation writes nothing and launches nothing (sweep runs
are planned from derived configs in a temporary folder).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from pydantic import ValidationError

from flows.graph import FlowGraph, Step
from flows.sweep_config import FLOWS_DIR, derived_config_text, with_values, write_derived_config
from lute_kernel.config import LoadedConfig, load_config
from lute_kernel.errors import InputError, UnknownTaskError
from lute_kernel.parameters import AnalysisHeader, RecordedMiss, noting_recorded_misses
from lute_kernel.registry import Registry
from lute_kernel.sites import SiteProfile
from lute_kernel.slurm.sbatch_args import parse_sbatch_args, split_slurm_params
from lute_kernel.task import TaskSpec
from lute_kernel.validation import HEADER_KEY, validate_header

RUN_VARIABLES = ("EXPERIMENT", "RUN", "RUN_NUM")
_RUN_REFERENCE = re.compile(r"\{\{\s*\$(EXPERIMENT|RUN|RUN_NUM)\b")


class FlowError(InputError):
    """The flow cannot run as given: every problem, one per line (file, node path, field)."""


@dataclass(frozen=True)
class PlannedStep:
    """One step, checked.

    Attributes:
        step: The step.
        task: The Task class name it runs (None: unknown Task).
        sbatch_args: sbatch options of a slurm step: its slurm_params, then the site's overrides.
        command: The ``lute-kernel`` command the step runs (``run`` locally, ``submit --wait`` on Slurm).
        argv: What that command starts (the launch plan's argv), when it is known before the flow runs.
        deferred: Fields resolved when the step starts (DB-backed defaults of earlier steps' rows).
        problems: What is wrong with it.
    """

    step: Step
    task: Optional[str]
    sbatch_args: Tuple[str, ...] = ()
    command: Tuple[str, ...] = ()
    argv: Tuple[str, ...] = ()
    deferred: Tuple[str, ...] = ()
    problems: Tuple[str, ...] = ()


@dataclass(frozen=True)
class FlowPlan:
    """Every step of a flow run, checked, with the config it runs from."""

    graph: FlowGraph
    config: Path
    work_dir: str
    backend: str
    steps: Tuple[PlannedStep, ...]
    notes: Tuple[str, ...] = field(default=())

    def problems(self) -> List[str]:
        """Return every problem of every step, in flow order."""
        return [problem for planned in self.steps for problem in planned.problems]

    def check(self) -> FlowPlan:
        """Return the plan; raise FlowError naming every problem when there is one."""
        problems = self.problems()
        if len(problems) == 1:
            raise FlowError(problems[0])
        if problems:
            raise FlowError(f"{len(problems)} problems in the flow:\n" + "\n".join(f"  {p}" for p in problems))
        return self

    def unknown(self) -> Dict[int, str]:
        """Return ``{step id: reason}`` for steps whose Task this kernel does not ship."""
        return {p.step.id: "unknown Task (--allow-unknown)" for p in self.steps if p.task is None}


@dataclass
class _Context:
    graph: FlowGraph
    config: LoadedConfig
    header: Optional[AnalysisHeader]
    registry: Registry
    site: SiteProfile
    backend: str
    runtime: Optional[str]
    env: Mapping[str, str]
    mode: str
    allow_unknown: bool
    temp: Path
    experiment: Optional[str]
    tasks: Dict[int, Optional[str]] = field(default_factory=dict)

    def where(self, step: Step, key: str = "") -> str:
        return ": ".join(part for part in (f"{self.graph.dag.path}:{step.line}", step.where, key) if part)


def site_sbatch_args(site: SiteProfile, experiment: Optional[str]) -> List[str]:
    """Return the site's sbatch options for every slurm step (after the step's own, so they win)."""
    flows = site.flows
    args: List[str] = []
    if flows.partition:
        args.append(f"--partition={flows.partition}")
    if flows.account:
        args.append(f"--account={flows.account.replace('{experiment}', experiment or '')}")
    return [*args, *flows.sbatch_args]


def plan_flow(
    graph: FlowGraph,
    config_path: Path,
    *,
    registry: Registry,
    site: SiteProfile,
    backend: str,
    runtime: Optional[str],
    host_env: Mapping[str, str],
    experiment: Optional[str] = None,
    allow_unknown: bool = False,
    mode: str = "run",
) -> FlowPlan:
    """Check every step of ``graph`` against ``config_path``; return the plan (``.check()`` raises).

    ``mode``: ``run`` (everything, as the flow will run it), ``deploy`` (what does not depend on
    the run: ``$EXPERIMENT``/``$RUN``/``$RUN_NUM`` get placeholders, errors in fields that use them
    are deferred, launch plans are not made) or ``show`` (as ``run``, problems kept per step).
    A bad config file or header raises InputError at once (nothing else can be checked).
    """
    env = dict(host_env)
    if mode == "deploy":
        env = {**{name: "0" for name in RUN_VARIABLES}, "EXPERIMENT": experiment or "EXPERIMENT", **env}
    config = load_config(config_path, env=env)
    try:
        header = validate_header(config, site=site, env=env)
    except InputError:
        if mode != "deploy" or not _run_dependent(config.raw_header):
            raise
        header = None  # e.g. a work_dir under the experiment's folder: known only for a run
    notes: List[str] = []
    if header is None:
        notes.append("the config header depends on the run: parameters are checked when the flow runs")
    with tempfile.TemporaryDirectory(prefix="lute-flow-check-") as temp:
        context = _Context(
            graph, config, header, registry, site, backend, runtime, env, mode, allow_unknown, Path(temp), experiment
        )
        planned = [_plan_step(context, step) for step in graph.steps]
    work_dir = header.work_dir if header is not None else ""
    return FlowPlan(graph, Path(config_path), work_dir, backend, tuple(planned), tuple(notes))


def _plan_step(ctx: _Context, step: Step) -> PlannedStep:
    problems: List[str] = []
    sbatch: List[str] = []
    try:
        sbatch = [*split_slurm_params(step.slurm_params), *site_sbatch_args(ctx.site, ctx.experiment)]
        parse_sbatch_args(sbatch)
    except InputError as exc:
        problems.append(f"{ctx.where(step, 'slurm_params')}: {exc}")
    try:
        spec = ctx.registry.get(step.task_name)
    except UnknownTaskError as exc:
        ctx.tasks[step.id] = None
        if not ctx.allow_unknown:
            problems.append(f"{ctx.where(step, 'task_name')}: {exc} (--allow-unknown skips such steps)")
        return PlannedStep(step, None, tuple(sbatch), problems=tuple(problems))
    ctx.tasks[step.id] = spec.name
    command = _command(ctx, step, spec.name, sbatch)
    if not ctx.config.has_section(spec.name):
        problems.append(
            f"{ctx.config.path}: {step.where}: the config has no section {spec.name!r} for this step's Task"
            f" ({step.task_name}); add `{spec.name}:` (`{spec.name}: {{}}` for its defaults)"
        )
        return PlannedStep(step, spec.name, tuple(sbatch), command, problems=tuple(problems))
    deferred: List[str] = []
    if ctx.header is not None:
        param_problems, deferred = _check_parameters(ctx, step, spec)
        problems += param_problems
    argv: Tuple[str, ...] = ()
    if not problems and not deferred and ctx.mode != "deploy" and ctx.header is not None:
        try:
            argv = _launch_argv(ctx, step, spec, sbatch)
        except InputError as exc:
            problems.append(f"{ctx.where(step)}: {spec.name}: {exc}")
    return PlannedStep(step, spec.name, tuple(sbatch), command, argv, tuple(deferred), tuple(problems))


def _command(ctx: _Context, step: Step, task: str, sbatch: Sequence[str]) -> Tuple[str, ...]:
    config = _sweep_config_path(ctx, step) if step.params else str(ctx.config.path)
    site = ["--site", ctx.site.name] + (["--runtime", ctx.runtime] if ctx.runtime else [])
    if ctx.backend == "slurm":
        return ("lute-kernel", "submit", task, "-c", config, *site, "--wait", "--cancel-on-exit", "--", *sbatch)
    return ("lute-kernel", "run", task, "-c", config, *site)


def _sweep_config_path(ctx: _Context, step: Step) -> str:
    """Where the flow writes a sweep run's config when it starts: the user's config with the run's values."""
    work_dir = ctx.header.work_dir if ctx.header is not None else "<work_dir>"
    return str(Path(work_dir) / FLOWS_DIR / "<flow run>" / f"{step.label}.yaml")


def _shown(params: Tuple[Tuple[str, Any], ...]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in params)


def _check_parameters(ctx: _Context, step: Step, spec: TaskSpec) -> Tuple[List[str], List[str]]:
    """Validate the step's section (with its sweep values); return (problems, deferred fields)."""
    model = spec.cls.Parameters
    problems: List[str] = []
    for name, _ in step.params:
        if name not in model.model_fields or name == HEADER_KEY:
            known = ", ".join(n for n in model.model_fields if n != HEADER_KEY)
            problems.append(
                f"{ctx.where(step, f'param_matrix.{name}')}: {spec.name} has no parameter {name!r} ({known})"
            )
    if problems:
        return problems, []
    config = with_values(ctx.config, spec.name, dict(step.params), ctx.env) if step.params else ctx.config
    try:
        section = dict(config.section(spec.name))
    except InputError as exc:
        if ctx.mode == "deploy" and _run_dependent(ctx.config.raw_sections.get(spec.name)):
            return [], ["the section (uses the run's variables)"]
        return [f"{ctx.where(step)}: {exc}"], []
    section.pop(HEADER_KEY, None)
    with noting_recorded_misses() as misses:
        try:
            model.model_validate({**section, HEADER_KEY: ctx.header})
            return [], []
        except ValidationError as exc:
            errors = exc.errors()
    return _classify(ctx, step, spec, config, errors, misses)


def _classify(
    ctx: _Context, step: Step, spec: TaskSpec, config: LoadedConfig, errors: List[Any], misses: List[RecordedMiss]
) -> Tuple[List[str], List[str]]:
    earlier = {ctx.tasks.get(i) for i in _ancestors(ctx.graph, step)}
    problems: List[str] = []
    deferred: List[str] = []
    raw = dict(ctx.config.raw_sections.get(spec.name) or {})
    for error in errors:
        loc = ".".join(str(part) for part in error["loc"])
        top = str(error["loc"][0]) if error["loc"] else ""
        missed = [m for m in misses if m.field == top]
        if missed and all(m.task_name in earlier for m in missed):
            deferred.append(f"{loc} (from {', '.join(sorted({m.task_name for m in missed}))}'s row)")
            continue
        if ctx.mode == "deploy" and _run_dependent(raw.get(top)):
            deferred.append(f"{loc} (uses the run's variables)")
            continue
        line = config.line_of(f"{spec.name}.{loc}") or config.line_of(spec.name)
        where = f"{ctx.config.path}:{line}" if line else str(ctx.config.path)
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = "unknown parameter"
        elif error.get("type") == "missing":
            message = "required parameter is missing"
        elif "input" in error:
            message += f" (got {error['input']!r})"[:80]
        if missed:
            tasks = ", ".join(sorted({m.task_name for m in missed}))
            message += f" ({tasks} has no valid row in lute.db, and no step before this one runs it)"
        sweep = f" (sweep run: {_shown(step.params)})" if step.params else ""
        problems.append(f"{where}: {step.where}: {spec.name}.{loc}: {message}{sweep}")
    return problems, deferred


def _ancestors(graph: FlowGraph, step: Step) -> Set[int]:
    found: Set[int] = set()
    todo = list(step.upstream)
    while todo:
        i = todo.pop()
        if i not in found:
            found.add(i)
            todo.extend(graph.steps[i].upstream)
    return found


def _launch_argv(ctx: _Context, step: Step, spec: TaskSpec, sbatch: Sequence[str]) -> Tuple[str, ...]:
    """Plan the launch exactly as the step will (``prepare`` / ``prepare_submission``); return its argv."""
    path = ctx.config.path
    if step.params:
        text = derived_config_text(ctx.config, spec.name, step.label, step.params)
        path = write_derived_config(ctx.temp, step.label, text)
    if ctx.backend == "slurm":
        from lute_kernel.slurm.submission import prepare_submission

        submission = prepare_submission(
            spec.name,
            path,
            site=ctx.site.name,
            runtime=ctx.runtime,
            registry=ctx.registry,
            host_env=ctx.env,
            sbatch_args=tuple(sbatch),
        )
        return _as_run(ctx, step, submission.command, path)
    from lute_kernel.api import prepare

    prepared = prepare(
        spec.name, path, site=ctx.site.name, runtime=ctx.runtime, registry=ctx.registry, host_env=ctx.env
    )
    return _as_run(ctx, step, prepared.plan.argv, path)


def _as_run(ctx: _Context, step: Step, argv: Sequence[str], checked: Path) -> Tuple[str, ...]:
    """The argv as the flow will run it (a sweep run's config at its place, not the check's temporary one)."""
    if not step.params:
        return tuple(argv)
    return tuple(arg.replace(str(checked), _sweep_config_path(ctx, step)) for arg in argv)


def _run_dependent(raw: Any) -> bool:
    """True when a raw config value uses ``$EXPERIMENT``, ``$RUN`` or ``$RUN_NUM`` (anywhere inside)."""
    if isinstance(raw, str):
        return bool(_RUN_REFERENCE.search(raw))
    if isinstance(raw, Mapping):
        return any(_run_dependent(v) for v in raw.values())
    if isinstance(raw, (list, tuple)):
        return any(_run_dependent(v) for v in raw)
    return False
