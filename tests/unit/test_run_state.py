"""The run's state machine: one owner, precedence written once, final states never change."""

from __future__ import annotations

import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lute_kernel.run_state import FINAL_STATES, RunState, StateError
from lute_kernel.task import TaskStatus


def test_a_clean_run_completes() -> None:
    state = RunState()
    assert state.status == TaskStatus.PENDING
    state.launched()
    assert state.status == TaskStatus.RUNNING
    state.worker_connected()
    state.reported_result({"task_status": "COMPLETED"})
    state.process_exited(0)
    assert state.finish() == TaskStatus.COMPLETED
    assert state.reason == ""


def test_final_states_cannot_change() -> None:
    state = RunState()
    state.launched()
    state.process_exited(1)
    assert state.finish() == TaskStatus.FAILED
    for report in (
        state.launched,
        lambda: state.process_exited(0),
        lambda: state.reported_result({}),
        lambda: state.tore_down(TaskStatus.TIMEDOUT, "x"),
        lambda: state.cancel_requested(signal.SIGTERM),
        lambda: state.after_tasklet_failed("x"),
        state.finish,
    ):
        with pytest.raises(StateError):
            report()
    assert state.status == TaskStatus.FAILED


def test_the_first_teardown_names_the_status() -> None:
    state = RunState()
    state.launched()
    assert state.tore_down(TaskStatus.TIMEDOUT, "timed out after 1 s")
    assert not state.tore_down(TaskStatus.FAILED, "a rank left")
    state.process_exited(-signal.SIGTERM)
    assert state.finish() == TaskStatus.TIMEDOUT
    assert state.reason == "timed out after 1 s"


def test_a_cancel_wins_over_ranks_that_vanished_meanwhile() -> None:
    state = RunState()
    state.launched()
    state.tore_down(TaskStatus.FAILED, "a rank left without finishing")
    state.cancel_requested(signal.SIGTERM)
    state.process_exited(-signal.SIGKILL)
    assert (state.finish(), state.reason) == (TaskStatus.CANCELLED, "cancelled by SIGTERM")


def test_a_run_that_completed_before_the_cancel_stays_completed() -> None:
    state = RunState()
    state.launched()
    state.reported_result({"task_status": "COMPLETED"})
    state.process_exited(0)
    state.cancel_requested(signal.SIGINT)
    assert state.finish() == TaskStatus.COMPLETED


def test_a_timeout_is_not_turned_into_a_cancel() -> None:
    state = RunState()
    state.launched()
    state.tore_down(TaskStatus.TIMEDOUT, "timed out after 5 s")
    state.cancel_requested(signal.SIGTERM)
    assert state.finish() == TaskStatus.TIMEDOUT


def test_an_after_tasklet_failure_fails_a_completed_run() -> None:
    state = RunState(worker=False)
    state.launched()
    state.process_exited(0)
    assert state.verdict()[0] == TaskStatus.COMPLETED
    state.after_tasklet_failed("an 'after' tasklet failed: OSError: x")
    assert (state.finish(), state.reason) == (TaskStatus.FAILED, "an 'after' tasklet failed: OSError: x")


def test_a_launch_failure_before_the_process_existed() -> None:
    state = RunState()
    state.launch_failed("cannot start 'nope': No such file or directory")
    assert state.finish() == TaskStatus.FAILED
    assert "cannot start" in state.reason


@pytest.mark.parametrize(
    ("code", "worker", "hello", "reason"),
    [
        (0, True, True, "the Task exited without reporting a result"),
        (3, True, False, "the Task exited with code 3 before connecting to the kernel"),
        (-9, True, True, "the Task was killed by SIGKILL"),
        (-200, False, False, "the Task was killed by signal 200"),
    ],
)
def test_exit_reasons(code: int, worker: bool, hello: bool, reason: str) -> None:
    state = RunState(worker=worker)
    state.launched()
    if hello:
        state.worker_connected()
    state.process_exited(code)
    assert (state.finish(), state.reason) == (TaskStatus.FAILED, reason)


def test_an_unknown_reported_status_is_a_failure_not_a_crash() -> None:
    state = RunState()
    state.launched()
    state.reported_result({"task_status": "BOGUS"})
    state.process_exited(0)
    assert state.finish() == TaskStatus.FAILED


FACTS = st.lists(
    st.sampled_from(
        [
            ("tore_down", TaskStatus.TIMEDOUT),
            ("tore_down", TaskStatus.CANCELLED),
            ("tore_down", TaskStatus.FAILED),
            ("cancel", None),
            ("exit", 0),
            ("exit", 1),
            ("exit", -9),
            ("result", None),
            ("error", None),
            ("hello", None),
            ("after", None),
        ]
    ),
    max_size=12,
)


@given(FACTS, st.booleans())
def test_any_sequence_of_facts_gives_exactly_one_final_status(facts: list, worker: bool) -> None:
    state = RunState(worker=worker)
    state.launched()
    for kind, value in facts:
        if kind == "tore_down":
            state.tore_down(value, f"{value}")
        elif kind == "cancel":
            state.cancel_requested(signal.SIGTERM)
        elif kind == "exit":
            state.process_exited(value)
        elif kind == "result":
            state.reported_result({"task_status": "COMPLETED"})
        elif kind == "error":
            state.reported_error({"type": "E", "message": "m"})
        elif kind == "hello":
            state.worker_connected()
        else:
            state.after_tasklet_failed("after")
    before = state.verdict()
    assert state.verdict() == before  # pure
    status = state.finish()
    assert status in FINAL_STATES
    assert (state.status, state.reason) == before
    with pytest.raises(StateError):
        state.finish()
