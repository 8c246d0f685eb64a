"""A DAG file's content as plain, immutable data: nodes, trigger rules, sweeps and branch points.

Owns the vocabulary of upstream LUTE's DAG files: a node names a managed Task and carries its
``slurm_params``, its trigger rule (a tag; ``ALL_SUCCESS`` by default), its children (``next``)
and, for a ``!param_sweep``, a parameter matrix; ``!run_type`` and ``!branch_daq2`` are branch
points whose keys select child nodes at run time. Pure: no YAML, no Tasks, no Prefect.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Tuple, Union


class TriggerRule(str, enum.Enum):
    """When a node runs, given how its upstream nodes ended (upstream LUTE's tags, without the ``!``)."""

    ALL_SUCCESS = "ALL_SUCCESS"
    ANY_SUCCESS = "ANY_SUCCESS"
    ALL_COMPLETED = "ALL_COMPLETED"
    ALL_FAILED = "ALL_FAILED"
    ANY_FAILED = "ANY_FAILED"
    ALWAYS = "ALWAYS"


DAQ_KEY = "daq2"
"""The key of ``!branch_daq2`` taken for an LCLS-II (daq2) run; the other key is taken otherwise."""


@dataclass(frozen=True)
class Node:
    """One node of a DAG file: a managed Task, or a ``!param_sweep`` of it.

    Attributes:
        task_name: The name as written: an upstream managed-Task name (``Tester``) or a Task class name.
        rule: Its trigger rule.
        slurm_params: sbatch options as one string (empty: the site's defaults); for a sweep, a
            template formatted with each combination (``--ntasks={ncores}``).
        next: Its children.
        line: 1-based line of the node in the DAG file.
        retries: The node's own ``retries:`` (None: the flow's).
        param_matrix: For a ``!param_sweep``: parameter name and its values, in file order.
        extra: Other upstream keys kept as written (``run_dependent``), shown but not used.
    """

    task_name: str
    rule: TriggerRule = TriggerRule.ALL_SUCCESS
    slurm_params: str = ""
    next: Tuple[Item, ...] = ()
    line: int = 0
    retries: Optional[int] = None
    param_matrix: Optional[Tuple[Tuple[str, Tuple[Any, ...]], ...]] = None
    extra: Tuple[Tuple[str, Any], ...] = ()

    @property
    def is_sweep(self) -> bool:
        """True for a ``!param_sweep`` node."""
        return self.param_matrix is not None


@dataclass(frozen=True)
class Branch:
    """A ``!run_type`` or ``!branch_daq2`` mapping: each key selects the nodes under it.

    Attributes:
        kind: ``run_type`` (every matching key runs: ``DARK``, and ``NOT_DARK`` for any other type)
            or ``daq`` (``daq2`` for LCLS-II runs, the other key otherwise).
        options: Each key and the nodes under it, in file order.
        line: 1-based line of the mapping.
    """

    kind: str
    options: Tuple[Tuple[str, Tuple[Item, ...]], ...]
    line: int = 0


Item = Union[Node, Branch]


@dataclass(frozen=True)
class Dag:
    """A whole DAG file: its path and its top-level items (one node, or several)."""

    path: Path
    roots: Tuple[Item, ...]

    def nodes(self) -> Tuple[Node, ...]:
        """Return every node, in file order, under every branch option."""
        found: list[Node] = []

        def walk(items: Tuple[Item, ...]) -> None:
            for item in items:
                if isinstance(item, Node):
                    found.append(item)
                    walk(item.next)
                else:
                    for _, nodes in item.options:
                        walk(nodes)

        walk(self.roots)
        return tuple(found)

    def has_branch(self, kind: str) -> bool:
        """Return True when the DAG has a branch point of ``kind`` (``run_type`` or ``daq``)."""

        def walk(items: Tuple[Item, ...]) -> bool:
            for item in items:
                if isinstance(item, Branch):
                    if item.kind == kind or any(walk(nodes) for _, nodes in item.options):
                        return True
                elif walk(item.next):
                    return True
            return False

        return walk(self.roots)
