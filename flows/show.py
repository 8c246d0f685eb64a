"""The text ``lute-kernel flow show`` prints: a DAG as a tree, with what each step would run. Pure.

Owns the drawing: one line per node (its name, the Task it resolves to, its trigger rule, sweep
and retries), then its slurm_params and — when a config was given — the exact command, the
launch plan's argv, deferred fields and problems; sweeps list every run with its values; branch
points list every option and say which this run takes. Draws every node, including Tasks this
kernel does not ship and branches not taken.
"""

from __future__ import annotations

import shlex
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from flows.dag import Branch, Dag, Item, Node
from flows.graph import Step, choose
from flows.validation import FlowPlan, PlannedStep

_TEE, _ELBOW, _PIPE, _BLANK = "├── ", "└── ", "│   ", "    "


def render(
    dag: Dag,
    steps: Sequence[Step],
    *,
    resolve: Dict[str, Optional[str]],
    plan: Optional[FlowPlan] = None,
    run_type: Optional[str] = None,
    daq: Optional[str] = None,
    backend: str = "local",
) -> List[str]:
    """Return the lines of the tree.

    Args:
        dag: The DAG as read.
        steps: Its steps with every branch taken (``expand(..., all_branches=True)``), in order.
        resolve: Managed name to Task class name (None: unknown Task).
        plan: The checked plan of those steps (with a config), for commands and problems.
        run_type: The run type, to mark which ``!run_type`` options run.
        daq: ``daq1``/``daq2``, to mark which ``!branch_daq2`` option runs.
        backend: ``local`` or ``slurm``.
    """
    planned = {p.step.id: p for p in plan.steps} if plan is not None else {}
    sweeps = sum(1 for node in dag.nodes() if node.is_sweep)
    head = f"{dag.path.name}: {len(dag.nodes())} nodes, {len(steps)} runs"
    if sweeps:
        head += f" ({sweeps} sweep{'s' if sweeps > 1 else ''})"
    head += f"; backend {backend}"
    lines = [head]
    queue = iter(steps)
    lines += list(_items(dag.roots, "", queue, resolve, planned, run_type, daq))
    if plan is not None:
        lines += [f"note: {note}" for note in plan.notes]
    return lines


def _items(
    items: Tuple[Item, ...],
    prefix: str,
    steps: Iterator[Step],
    resolve: Dict[str, Optional[str]],
    planned: Dict[int, PlannedStep],
    run_type: Optional[str],
    daq: Optional[str],
) -> Iterator[str]:
    for index, item in enumerate(items):
        last = index == len(items) - 1
        connector, inner = (_ELBOW, _BLANK) if last else (_TEE, _PIPE)
        if isinstance(item, Node):
            yield from _node(item, prefix, connector, prefix + inner, steps, resolve, planned, run_type, daq)
        else:
            yield from _branch(item, prefix, connector, prefix + inner, steps, resolve, planned, run_type, daq)


def _node(
    node: Node,
    prefix: str,
    connector: str,
    inner: str,
    steps: Iterator[Step],
    resolve: Dict[str, Optional[str]],
    planned: Dict[int, PlannedStep],
    run_type: Optional[str],
    daq: Optional[str],
) -> Iterator[str]:
    task = resolve.get(node.task_name)
    target = f" → {task}" if task else " → (unknown Task: not shipped; --allow-unknown skips it)"
    if task == node.task_name:
        target = ""
    notes = [node.rule.value]
    if node.param_matrix is not None:
        count = 1
        for _, values in node.param_matrix:
            count *= len(values)
        notes.append(f"!param_sweep: {count} runs, children wait for all")
    if node.retries is not None:
        notes.append(f"retries {node.retries}")
    notes += [f"{key}: {value}" for key, value in node.extra]
    yield f"{prefix}{connector}{node.task_name}{target}  [{'; '.join(notes)}]"
    detail = inner + (_PIPE if node.next else _BLANK)
    if node.param_matrix is None:
        yield from _step_details(next(steps), detail, planned)
    else:
        count = 1
        for _, values in node.param_matrix:
            count *= len(values)
        for _ in range(count):
            step = next(steps)
            shown = ", ".join(f"{name}={value!r}" for name, value in step.params)
            yield f"{detail}{step.label}  {shown}"
            yield from _step_details(step, detail + "  ", planned)
    yield from _items(node.next, inner, steps, resolve, planned, run_type, daq)


def _step_details(step: Step, prefix: str, planned: Dict[int, PlannedStep]) -> Iterator[str]:
    yield f"{prefix}slurm: {step.slurm_params or '(none: the site defaults)'}"
    info = planned.get(step.id)
    if info is None:
        return
    if info.command:
        yield f"{prefix}$ {shlex.join(info.command)}"
    if info.argv:
        yield f"{prefix}runs: {shlex.join(info.argv)}"
    for field in info.deferred:
        yield f"{prefix}deferred: {field}, resolved when it starts"
    for problem in info.problems:
        yield f"{prefix}error: {problem}"


def _branch(
    branch: Branch,
    prefix: str,
    connector: str,
    inner: str,
    steps: Iterator[Step],
    resolve: Dict[str, Optional[str]],
    planned: Dict[int, PlannedStep],
    run_type: Optional[str],
    daq: Optional[str],
) -> Iterator[str]:
    tag = "!run_type" if branch.kind == "run_type" else "!branch_daq2"
    known = run_type if branch.kind == "run_type" else daq
    taken = {key for key, _ in choose(branch, run_type, daq)} if known is not None else None
    what = "run type" if branch.kind == "run_type" else "DAQ"
    head = f"{prefix}{connector}{tag}"
    head += f"  ({what} {known})" if known is not None else f"  ({what} given at run time)"
    yield head
    for index, (key, items) in enumerate(branch.options):
        last = index == len(branch.options) - 1
        option_connector, option_inner = (_ELBOW, _BLANK) if last else (_TEE, _PIPE)
        mark = "" if taken is None else ("  runs" if key in taken else "  not taken")
        yield f"{inner}{option_connector}[{key}]{mark}"
        yield from _items(items, inner + option_inner, steps, resolve, planned, run_type, daq)
