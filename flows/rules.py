"""Trigger rules: given how a step's upstream steps ended, does it run or is it skipped? Pure.

Semantics (Airflow's, which upstream LUTE's tags name): a step is decided once every upstream step
has ended. ``COMPLETED`` is success; ``FAILED``, ``TIMEDOUT`` and ``CANCELLED`` are failures; a
``SKIPPED`` step is neither, so under ``ALL_SUCCESS`` (the default) and ``ALL_FAILED`` its
children are skipped too, while ``ALL_COMPLETED`` (everything upstream has ended) and ``ALWAYS``
run, and the ``ANY_`` rules look for one success or one failure among the others. A step with no
upstream always runs.
"""

from __future__ import annotations

import enum
from typing import Sequence, Tuple

from flows.dag import TriggerRule


class NodeState(str, enum.Enum):
    """The state of one step in a flow run (the Task's statuses, plus PENDING and SKIPPED)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMEDOUT = "TIMEDOUT"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"

    @property
    def final(self) -> bool:
        """True once the step will not change again."""
        return self not in (NodeState.PENDING, NodeState.RUNNING)

    @property
    def failed(self) -> bool:
        """True for the states that count as failure."""
        return self in (NodeState.FAILED, NodeState.TIMEDOUT, NodeState.CANCELLED)


def decide(rule: TriggerRule, upstream: Sequence[Tuple[str, NodeState]]) -> Tuple[bool, str]:
    """Return ``(runs, why)`` for a step whose upstream steps (``(name, state)``, all final) ended so."""
    if not upstream:
        return True, "no upstream step"
    if rule is TriggerRule.ALWAYS:
        return True, "ALWAYS"
    if rule is TriggerRule.ALL_COMPLETED:
        return True, "ALL_COMPLETED: every upstream step has ended"
    succeeded = [name for name, state in upstream if state is NodeState.COMPLETED]
    failed = [name for name, state in upstream if state.failed]
    others = [f"{name} {state.value}" for name, state in upstream if state is not NodeState.COMPLETED]
    if rule is TriggerRule.ALL_SUCCESS:
        return (True, "ALL_SUCCESS") if not others else (False, f"ALL_SUCCESS, but {', '.join(others)}")
    if rule is TriggerRule.ANY_SUCCESS:
        return (True, f"ANY_SUCCESS: {succeeded[0]} COMPLETED") if succeeded else (False, "ANY_SUCCESS: none completed")
    if rule is TriggerRule.ALL_FAILED:
        if len(failed) == len(upstream):
            return True, "ALL_FAILED: every upstream step failed"
        not_failed = [f"{name} {state.value}" for name, state in upstream if not state.failed]
        return False, f"ALL_FAILED, but {', '.join(not_failed)}"
    if rule is TriggerRule.ANY_FAILED:
        return (True, f"ANY_FAILED: {failed[0]} failed") if failed else (False, "ANY_FAILED: none failed")
    raise ValueError(f"unknown trigger rule {rule!r}")  # pragma: no cover - the enum is closed
