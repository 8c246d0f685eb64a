"""The state of one flow run's steps: which may start now, which are skipped, when the run is over.

Owns the bookkeeping between the flow and its backends, with no threads and no Prefect: the flow
asks :meth:`Scheduler.decide` for the steps that may start (deciding, and skipping, every step
whose upstream steps have all ended, in cascade), reports each end with :meth:`finished`, and on
cancellation :meth:`cancel_pending` ends every step not yet started. Steps that cannot run
(a Task this kernel does not ship, with ``--allow-unknown``) are skipped when their turn comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional

from flows.graph import FlowGraph, Step
from flows.rules import NodeState, decide


@dataclass(frozen=True)
class Change:
    """One step's new state and why (for the live table and the flow's log)."""

    step: Step
    state: NodeState
    reason: str = ""


class Scheduler:
    """Step states of one flow run; every state change is returned as a :class:`Change`."""

    def __init__(self, graph: FlowGraph, unrunnable: Optional[Mapping[int, str]] = None) -> None:
        self.graph = graph
        self.states: Dict[int, NodeState] = {step.id: NodeState.PENDING for step in graph.steps}
        self.reasons: Dict[int, str] = {}
        self._unrunnable = dict(unrunnable or {})
        self._started: set[int] = set()

    @property
    def done(self) -> bool:
        """True when every step has ended."""
        return all(state.final for state in self.states.values())

    @property
    def running(self) -> List[int]:
        """Ids of the steps started and not yet ended."""
        return [i for i in self._started if not self.states[i].final]

    def decide(self) -> tuple[List[Step], List[Change]]:
        """Return the steps to start now (marked RUNNING) and every change made (skips included)."""
        to_start: List[Step] = []
        changes: List[Change] = []
        progress = True
        while progress:
            progress = False
            for step in self.graph.steps:
                if self.states[step.id] is not NodeState.PENDING or step.id in self._started:
                    continue
                upstream = [(self.graph.steps[i].label, self.states[i]) for i in step.upstream]
                if not all(state.final for _, state in upstream):
                    continue
                runs, why = decide(step.rule, upstream)
                if runs and step.id in self._unrunnable:
                    runs, why = False, self._unrunnable[step.id]
                if runs:
                    self._started.add(step.id)
                    self.states[step.id] = NodeState.RUNNING
                    to_start.append(step)
                    changes.append(Change(step, NodeState.RUNNING, why))
                else:
                    changes.append(self._set(step, NodeState.SKIPPED, why))
                    progress = True  # a skip may decide its children
        return to_start, changes

    def upcoming(self) -> Optional[Step]:
        """The first step not started whose upstream steps have all started, some still running: the next, probably.

        Safe to call from another thread while the flow decides (it only reads the states).
        """
        for step in self.graph.steps:
            if self.states[step.id] is not NodeState.PENDING or step.id in self._started:
                continue
            states = [self.states[i] for i in step.upstream]
            if states and all(s.final or s is NodeState.RUNNING for s in states) and not all(s.final for s in states):
                return step
        return None

    def finished(self, step_id: int, state: NodeState, reason: str = "") -> Change:
        """Record how a started step ended."""
        if not state.final:
            raise ValueError(f"{state.value} is not a final state")
        return self._set(self.graph.steps[step_id], state, reason)

    def cancel_pending(self, reason: str = "the flow run was cancelled before it started") -> List[Change]:
        """End every step not started yet as CANCELLED (nothing of it ran)."""
        return [
            self._set(step, NodeState.CANCELLED, reason)
            for step in self.graph.steps
            if self.states[step.id] is NodeState.PENDING
        ]

    def _set(self, step: Step, state: NodeState, reason: str) -> Change:
        self.states[step.id] = state
        self.reasons[step.id] = reason
        return Change(step, state, reason)
