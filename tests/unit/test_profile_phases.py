"""The --profile breakdown: phases from a run's marks, the RUNNING row shown beside the worker's start."""

from __future__ import annotations

from lute_kernel.profile import Timeline


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
