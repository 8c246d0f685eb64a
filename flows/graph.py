"""The runs a DAG expands to: branch points resolved, sweeps expanded, upstream edges explicit.

Owns turning a :class:`flows.dag.Dag` into :class:`Step`s, the unit that runs (one Task run, one
Prefect task, one DB row per attempt): a ``!param_sweep`` becomes one step per combination of its
matrix (named ``<managed name>_<index>``, in ``itertools.product`` order, its ``slurm_params``
formatted with the combination) and its children wait for every one of them; ``!run_type`` takes
every matching key (``DARK``, or ``NOT_DARK`` for any other type); ``!branch_daq2`` takes
``daq2`` or the other key. Pure.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from flows.dag import DAQ_KEY, Branch, Dag, Item, Node, TriggerRule
from flows.dag_yaml import DagError, node_path

DAQS = ("daq1", "daq2")


@dataclass(frozen=True)
class Step:
    """One run of the flow.

    Attributes:
        id: Position in the flow (parents before children).
        name: The managed name; a sweep's runs are ``<name>_<index>``.
        label: ``name``, made unique (``Tester#2``) when the DAG names a Task twice.
        task_name: The name the DAG node gives (an alias or a Task class name).
        path: Node path for messages: ancestors' names, then ``name``.
        rule: Trigger rule.
        upstream: Ids of the steps it waits for.
        slurm_params: sbatch options (a sweep's template, formatted).
        params: A sweep combination, ``(parameter, value)`` pairs (empty for plain nodes).
        retries: The node's own ``retries:``.
        line: Line of the node in the DAG file.
        sweep: ``(index, count)`` for a sweep's runs.
    """

    id: int
    name: str
    label: str
    task_name: str
    path: Tuple[str, ...]
    rule: TriggerRule
    upstream: Tuple[int, ...]
    slurm_params: str
    params: Tuple[Tuple[str, Any], ...] = ()
    retries: Optional[int] = None
    line: int = 0
    sweep: Optional[Tuple[int, int]] = None

    @property
    def where(self) -> str:
        """The node path as messages print it."""
        return node_path(self.path)


@dataclass(frozen=True)
class FlowGraph:
    """The steps of one flow run, parents first."""

    dag: Dag
    steps: Tuple[Step, ...]
    run_type: Optional[str] = None
    daq: Optional[str] = None

    def children(self, step_id: int) -> List[Step]:
        """Return the steps that wait for ``step_id``."""
        return [s for s in self.steps if step_id in s.upstream]


def sweep_combinations(matrix: Tuple[Tuple[str, Tuple[Any, ...]], ...]) -> List[Dict[str, Any]]:
    """Return every combination of a parameter matrix, as upstream orders them (``itertools.product``)."""
    names = [name for name, _ in matrix]
    return [dict(zip(names, values)) for values in itertools.product(*(values for _, values in matrix))]


def format_slurm_params(template: str, values: Dict[str, Any], *, where: str, path: str, line: int) -> str:
    """Format a sweep's ``slurm_params`` with one combination; a name not in the matrix is an error."""
    try:
        return template.format(**values)
    except KeyError as exc:
        problem = f"refers to {{{exc.args[0]}}}, which is not in param_matrix ({', '.join(values)})"
    except (ValueError, IndexError) as exc:
        problem = f"is not a template of the sweep's parameters: {exc}"
    raise DagError(where, problem, line=line, node=path, field="slurm_params")


def choose(branch: Branch, run_type: Optional[str], daq: Optional[str]) -> List[Tuple[str, Tuple[Item, ...]]]:
    """Return the options of a branch point that this run takes (``run_type``/``daq`` must be known)."""
    if branch.kind == "run_type":
        return [
            (key, items)
            for key, items in branch.options
            if key == run_type or (key.startswith("NOT_") and key[4:] != run_type)
        ]
    take_daq2 = daq == DAQ_KEY
    return [(key, items) for key, items in branch.options if (key == DAQ_KEY) == take_daq2]


class _Expander:
    def __init__(self, dag: Dag, run_type: Optional[str], daq: Optional[str], all_branches: bool) -> None:
        self.dag, self.run_type, self.daq, self.all_branches = dag, run_type, daq, all_branches
        self.steps: List[Step] = []

    def items(self, items: Tuple[Item, ...], upstream: Tuple[int, ...], parents: Tuple[str, ...]) -> None:
        for item in items:
            if isinstance(item, Node):
                self.node(item, upstream, parents)
            else:
                for key, nodes in self.options(item, parents):
                    self.items(nodes, upstream, (*parents, f"[{key}]"))

    def options(self, branch: Branch, parents: Tuple[str, ...]) -> List[Tuple[str, Tuple[Item, ...]]]:
        if self.all_branches:
            return list(branch.options)
        known = self.run_type if branch.kind == "run_type" else self.daq
        if known is None:
            what, flag = ("run type", "--run-type TYPE") if branch.kind == "run_type" else ("DAQ", "--daq daq1|daq2")
            tag = "!run_type" if branch.kind == "run_type" else "!branch_daq2"
            raise DagError(
                str(self.dag.path),
                f"the flow branches on the run's {what} here ({tag}): give {flag}, or set flows.elog_runs_url"
                " in the site profile so it is read from the eLog",
                line=branch.line,
                node=node_path((*parents, tag)),
            )
        return choose(branch, self.run_type, self.daq)

    def node(self, node: Node, upstream: Tuple[int, ...], parents: Tuple[str, ...]) -> None:
        path = (*parents, node.task_name)
        if node.param_matrix is None:
            combos: List[Dict[str, Any]] = [{}]
        else:
            combos = sweep_combinations(node.param_matrix)
        ids: List[int] = []
        for index, combo in enumerate(combos):
            sweep = node.param_matrix is not None
            name = f"{node.task_name}_{index}" if sweep else node.task_name
            slurm = node.slurm_params
            if sweep and slurm:
                slurm = format_slurm_params(
                    slurm, combo, where=str(self.dag.path), path=node_path((*parents, name)), line=node.line
                )
            step = Step(
                id=len(self.steps),
                name=name,
                label=name,
                task_name=node.task_name,
                path=(*parents, name),
                rule=node.rule,
                upstream=upstream,
                slurm_params=slurm,
                params=tuple(combo.items()),
                retries=node.retries,
                line=node.line,
                sweep=(index, len(combos)) if sweep else None,
            )
            self.steps.append(step)
            ids.append(step.id)
        self.items(node.next, tuple(ids), path)  # a sweep's children wait for the whole sweep


def expand(
    dag: Dag, *, run_type: Optional[str] = None, daq: Optional[str] = None, all_branches: bool = False
) -> FlowGraph:
    """Return the steps of ``dag`` for a run of type ``run_type`` on ``daq`` (``daq1``/``daq2``).

    With ``all_branches`` every option of every branch point is taken (to check or draw them all).
    Raises DagError when a branch point needs a run type or DAQ that is not known.
    """
    if daq is not None and daq not in DAQS:
        raise DagError(str(dag.path), f"the DAQ is daq1 (LCLS-I) or daq2 (LCLS-II), not {daq!r}")
    expander = _Expander(dag, run_type, daq, all_branches)
    expander.items(dag.roots, (), ())
    counts = Counter(step.name for step in expander.steps)
    seen: Counter[str] = Counter()
    steps: List[Step] = []
    for step in expander.steps:
        seen[step.name] += 1
        if counts[step.name] > 1 and seen[step.name] > 1:
            step = Step(**{**vars(step), "label": f"{step.name}#{seen[step.name]}"})
        steps.append(step)
    return FlowGraph(dag, tuple(steps), run_type, daq)
