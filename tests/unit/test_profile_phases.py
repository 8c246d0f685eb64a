"""The --profile breakdown: phases from a run's marks, the RUNNING row shown beside the worker's start."""

from __future__ import annotations

from lute_kernel.profile import IN_ALL, Timeline, steps_report


def test_a_worker_run_shows_its_row_while_the_worker_starts() -> None:
    marks = {"launch": 1.0, "spawned": 1.002, "admitted": 1.012, "hello": 1.3, "params": 1.3005, "result": 1.31}
    phases = dict(Timeline(dict(marks)).phases())
    assert round(phases["container start, worker ready"]) == 298
    assert round(phases["RUNNING row (while the worker starts)"]) == 10
    assert round(phases["parameters sent (after the row)"], 1) == 0.5


def test_a_binary_row_written_before_its_spawn_is_no_phase() -> None:
    marks = {"admitted": 1.0, "launch": 1.001, "spawned": 1.003, "exited": 1.2}
    labels = [label for label, _ in Timeline(dict(marks)).phases()]
    assert "RUNNING row (while the worker starts)" not in labels
    assert "spawn" in labels


def test_a_steps_phases_leave_out_the_host_start_up_and_add_the_whole_run() -> None:
    marks = {"prepare_start": 5.0, "prepared": 5.003, "launch": 5.004, "spawned": 5.006, "recorded": 5.3}
    phases = Timeline(dict(marks)).step_phases()
    assert not any(label.startswith("host start-up") for label in phases)
    assert phases["validation (config, parameters, plan)"] == 3.0
    assert phases[IN_ALL] == 300.0


def test_many_steps_report_each_phases_median_in_the_runs_order() -> None:
    steps = [{"Task": 1.0, IN_ALL: 10.0}, {"Task": 3.0, "spawn": 2.0, IN_ALL: 30.0}, {"Task": 9.0, IN_ALL: 20.0}]
    lines = steps_report(steps).splitlines()
    assert lines[0] == "lute-kernel profile: 3 steps, the median of each phase"
    assert [line.split("  ")[1].strip() for line in lines[1:]] == ["spawn", "Task", IN_ALL]
    assert lines[2].endswith(" 3.0 ms  (3 steps)") and lines[1].endswith(" 2.0 ms  (1 steps)")
    assert lines[3].endswith(" 20.0 ms  (3 steps)")
    assert steps_report([{"Task": 1.0}, {"Task": 2.0}]).splitlines()[1].endswith(" 1.5 ms  (2 steps)")
    assert "no step reported" in steps_report([])
