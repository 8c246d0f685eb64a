"""Expansion (flows.graph), trigger rules (flows.rules) and the scheduler (flows.scheduler): pure, exact."""

from __future__ import annotations

import itertools
from typing import Dict, List, Tuple

import pytest

from flows.dag import TriggerRule
from flows.dag_yaml import DagError, parse_dag
from flows.graph import expand, sweep_combinations
from flows.rules import NodeState, decide
from flows.scheduler import Scheduler

C, F, T, X, S = NodeState.COMPLETED, NodeState.FAILED, NodeState.TIMEDOUT, NodeState.CANCELLED, NodeState.SKIPPED

SWEEP = """!LUTE_DAG
task_name: Tester
next:
- !param_sweep
  task_name: SocketTester
  param_matrix: {num_arrays: [5, 10], array_size: [1, 2, 3]}
  slurm_params: "--ntasks={num_arrays} --comment=size{array_size}"
  next:
  - task_name: ReadTester
"""


def test_a_sweep_expands_in_product_order_and_its_children_wait_for_all() -> None:
    graph = expand(parse_dag(SWEEP, "s.yaml"))
    names = [s.name for s in graph.steps]
    assert names == ["Tester", *[f"SocketTester_{i}" for i in range(6)], "ReadTester"]
    sweep = graph.steps[1:7]
    assert [dict(s.params) for s in sweep] == [
        {"num_arrays": n, "array_size": a} for n, a in itertools.product([5, 10], [1, 2, 3])
    ]
    assert [s.slurm_params for s in sweep][:2] == ["--ntasks=5 --comment=size1", "--ntasks=5 --comment=size2"]
    assert all(s.upstream == (0,) and s.sweep == (i, 6) for i, s in enumerate(sweep))
    assert graph.steps[7].upstream == (1, 2, 3, 4, 5, 6)
    assert graph.steps[7].where == "Tester > SocketTester > ReadTester"
    assert sweep_combinations((("a", (1,)), ("b", ("x", "y")))) == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}]


def test_a_sweep_template_naming_an_unknown_parameter_is_an_error() -> None:
    text = SWEEP.replace("{array_size}", "{cores}")
    with pytest.raises(DagError, match=r"s.yaml:4: Tester > SocketTester_0: slurm_params: refers to \{cores\}"):
        expand(parse_dag(text, "s.yaml"))


BRANCHES = """!LUTE_DAG
task_name: Tester
next:
- !run_type
  DARK: {task_name: A}
  NOT_DARK: {task_name: B}
  GEOM: [{task_name: C}, {task_name: D}]
- !branch_daq2
  daq2: {task_name: E}
  daq1: {task_name: F}
"""


@pytest.mark.parametrize(
    ("run_type", "daq", "taken"),
    [
        ("DARK", "daq2", ["Tester", "A", "E"]),
        ("GEOM", "daq1", ["Tester", "B", "C", "D", "F"]),
        ("DATA", "daq2", ["Tester", "B", "E"]),
    ],
)
def test_run_type_is_additive_and_daq_picks_one(run_type: str, daq: str, taken: List[str]) -> None:
    graph = expand(parse_dag(BRANCHES, "b.yaml"), run_type=run_type, daq=daq)
    assert [s.name for s in graph.steps] == taken
    assert all(s.upstream == (0,) for s in graph.steps[1:])


def test_unknown_run_type_or_daq_is_an_error_naming_the_flag() -> None:
    dag = parse_dag(BRANCHES, "b.yaml")
    with pytest.raises(DagError, match=r"b.yaml:4: Tester > !run_type: .*give --run-type TYPE"):
        expand(dag, daq="daq2")
    with pytest.raises(DagError, match=r"give --daq daq1\|daq2"):
        expand(dag, run_type="DARK")
    with pytest.raises(DagError, match="the DAQ is daq1"):
        expand(dag, run_type="DARK", daq="lcls2")
    assert [s.name for s in expand(dag, all_branches=True).steps] == ["Tester", "A", "B", "C", "D", "E", "F"]


def test_repeated_names_get_unique_labels() -> None:
    graph = expand(parse_dag("!LUTE_DAG\n- task_name: Tester\n- task_name: Tester\n- task_name: X\n", "r.yaml"))
    assert [s.label for s in graph.steps] == ["Tester", "Tester#2", "X"]


# Every rule, for every combination of two upstream outcomes (success, failure, skipped).
OUTCOMES = [C, F, S]
EXPECTED: Dict[TriggerRule, Dict[Tuple[NodeState, NodeState], bool]] = {
    TriggerRule.ALL_SUCCESS: {(a, b): a is C and b is C for a in OUTCOMES for b in OUTCOMES},
    TriggerRule.ANY_SUCCESS: {(a, b): C in (a, b) for a in OUTCOMES for b in OUTCOMES},
    TriggerRule.ALL_COMPLETED: {(a, b): True for a in OUTCOMES for b in OUTCOMES},
    TriggerRule.ALL_FAILED: {(a, b): a is F and b is F for a in OUTCOMES for b in OUTCOMES},
    TriggerRule.ANY_FAILED: {(a, b): F in (a, b) for a in OUTCOMES for b in OUTCOMES},
    TriggerRule.ALWAYS: {(a, b): True for a in OUTCOMES for b in OUTCOMES},
}


@pytest.mark.parametrize("rule", list(TriggerRule))
def test_every_rule_on_every_pair_of_outcomes(rule: TriggerRule) -> None:
    for (a, b), runs in EXPECTED[rule].items():
        assert decide(rule, [("a", a), ("b", b)])[0] is runs, (rule, a, b)
    assert decide(rule, []) == (True, "no upstream step")


def test_timeouts_and_cancellations_count_as_failures() -> None:
    assert decide(TriggerRule.ALL_FAILED, [("a", T), ("b", X)])[0]
    assert decide(TriggerRule.ALL_SUCCESS, [("a", C), ("b", T)]) == (False, "ALL_SUCCESS, but b TIMEDOUT")


RULES_DAG = """!LUTE_DAG
task_name: Root
next:
- task_name: Fails
  next:
  - task_name: AfterFail            # ALL_SUCCESS: skipped
    next:
    - task_name: Grandchild         # skipped too (its upstream was skipped)
    - !ALL_COMPLETED {task_name: Cleanup}   # runs: its upstream has ended
    - !ALWAYS {task_name: Always}
  - !ALL_FAILED {task_name: OnFailure}
  - !ANY_FAILED {task_name: AnyFailed}
  - !ANY_SUCCESS {task_name: AnySuccess}   # skipped: its one upstream failed
- task_name: Sibling                # a failing branch does not stop its sibling
"""


def _run(graph_text: str, outcome: Dict[str, NodeState]) -> Dict[str, NodeState]:
    graph = expand(parse_dag(graph_text, "r.yaml"))
    scheduler = Scheduler(graph)
    while not scheduler.done:
        starting, _ = scheduler.decide()
        for step in starting:
            scheduler.finished(step.id, outcome.get(step.name, C))
    return {s.name: scheduler.states[s.id] for s in graph.steps}


def test_skips_propagate_unless_a_rule_says_otherwise() -> None:
    assert _run(RULES_DAG, {"Fails": F}) == {
        "Root": C,
        "Fails": F,
        "AfterFail": S,
        "Grandchild": S,
        "Cleanup": C,
        "Always": C,
        "OnFailure": C,
        "AnyFailed": C,
        "AnySuccess": S,
        "Sibling": C,
    }


def test_when_nothing_fails_the_failure_handlers_are_skipped() -> None:
    states = _run(RULES_DAG, {})
    assert [name for name, state in states.items() if state is S] == ["OnFailure", "AnyFailed"]


def test_the_scheduler_starts_only_what_is_ready_and_cancels_what_is_pending() -> None:
    graph = expand(parse_dag(SWEEP, "s.yaml"))
    scheduler = Scheduler(graph, unrunnable={7: "unknown Task (--allow-unknown)"})
    starting, changes = scheduler.decide()
    assert [s.name for s in starting] == ["Tester"] and [c.state for c in changes] == [NodeState.RUNNING]
    assert scheduler.decide() == ([], [])
    scheduler.finished(0, C)
    starting, _ = scheduler.decide()
    assert len(starting) == 6 and sorted(scheduler.running) == [1, 2, 3, 4, 5, 6]
    for step in starting[:5]:
        scheduler.finished(step.id, C)
    assert scheduler.decide() == ([], [])  # the sweep's child waits for every run of the sweep
    scheduler.finished(6, C)
    starting, changes = scheduler.decide()
    assert starting == [] and [(c.step.name, c.state, c.reason) for c in changes] == [
        ("ReadTester", S, "unknown Task (--allow-unknown)")
    ]
    assert scheduler.done


def test_cancelling_ends_pending_steps() -> None:
    graph = expand(parse_dag(SWEEP, "s.yaml"))
    scheduler = Scheduler(graph)
    scheduler.decide()
    cancelled = scheduler.cancel_pending()
    assert [c.step.name for c in cancelled] == [s.name for s in graph.steps[1:]]
    assert not scheduler.done  # Tester still runs
    scheduler.finished(0, X, "cancelled by SIGTERM")
    assert scheduler.done and scheduler.decide() == ([], [])
    with pytest.raises(ValueError):
        scheduler.finished(0, NodeState.RUNNING)
