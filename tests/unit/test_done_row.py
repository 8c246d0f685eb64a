"""Skip-if-done: the valid COMPLETED row of this run with the same parameters, image digest and kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lute_kernel.db import RunRecord, find_done_row, invalidate, record_run

HEADER = {"title": "t", "experiment": "xpptut15", "run": 14, "date": "2026/11/22", "task_timeout": 60}
PARAMS: Dict[str, Any] = {"outfile_name": "out.h5", "n": {"m": [1, 2]}, "flag": True, "rate": 0.5, "opt": None}
SHA = "ab" * 32


def record(tmp_path: Path, **changes: Any) -> int:
    fields: Dict[str, Any] = {
        "task_name": "Test",
        "header": HEADER,
        "parameters": PARAMS,
        "task_status": "COMPLETED",
        "summary": "done",
        "payload": "out.h5",
        "image_sha256": SHA,
        "kernel_version": "0.1.0",
    }
    fields.update(changes)
    return record_run(tmp_path, RunRecord(**fields))


def done(tmp_path: Path, parameters: Optional[Dict[str, Any]] = None, **changes: Any) -> Optional[int]:
    query: Dict[str, Any] = {"experiment": "xpptut15", "run": 14, "image_sha256": SHA, "kernel_version": "0.1.0"}
    query.update(changes)
    row = find_done_row(tmp_path, "Test", PARAMS if parameters is None else parameters, **query)
    return None if row is None else int(row["id"])


def test_the_newest_matching_completed_row_is_found(tmp_path: Path) -> None:
    assert done(tmp_path) is None  # no database yet: nothing is done, nothing is created
    assert not (tmp_path / "lute.db").exists()
    first = record(tmp_path)
    assert done(tmp_path) == first
    second = record(tmp_path)
    assert done(tmp_path) == second
    assert done(tmp_path, run="14") == second  # the run as the header may spell it


@pytest.mark.parametrize(
    "changes",
    [
        {"experiment": "other"},
        {"run": 15},
        {"image_sha256": "cd" * 32},
        {"image_sha256": None},
        {"kernel_version": "0.2.0"},
    ],
)
def test_another_run_image_or_kernel_is_not_done(tmp_path: Path, changes: Dict[str, Any]) -> None:
    record(tmp_path)
    assert done(tmp_path, **changes) is None


@pytest.mark.parametrize(
    "parameters",
    [
        {**PARAMS, "outfile_name": "other.h5"},
        {**PARAMS, "n": {"m": [1]}},  # a shorter list leaves n.m[1] behind in the row
        {**PARAMS, "n": {"m": [1, 2, 3]}},  # a column no row has
        {**PARAMS, "flag": False},
        {**PARAMS, "rate": 0.25},
        {**PARAMS, "opt": "set"},
        {k: v for k, v in PARAMS.items() if k != "rate"},
    ],
)
def test_other_parameters_are_not_done(tmp_path: Path, parameters: Dict[str, Any]) -> None:
    record(tmp_path)
    assert done(tmp_path, parameters) is None


@pytest.mark.parametrize("status", ["FAILED", "TIMEDOUT", "CANCELLED"])
def test_only_completed_valid_rows_count(tmp_path: Path, status: str) -> None:
    record(tmp_path, task_status=status)
    assert done(tmp_path) is None
    completed = record(tmp_path)
    invalidate(tmp_path, "Test", completed)
    assert done(tmp_path) is None  # invalidated: run it again


def test_a_row_written_without_a_parameter_added_later_does_not_count(tmp_path: Path) -> None:
    old = {k: v for k, v in PARAMS.items() if k != "rate"}
    record(tmp_path, parameters=old)
    record(tmp_path, parameters=PARAMS, payload="new")  # adds the rate column; the old row has NULL there
    assert done(tmp_path, old) == 1
    assert done(tmp_path, PARAMS) == 2


def test_values_compare_as_sqlite_stored_them(tmp_path: Path) -> None:
    params = {"count": "12", "ratio": 1}  # text in what becomes an INTEGER column; an int in a REAL one
    record(tmp_path, parameters={"count": 12, "ratio": 1.0})
    assert done(tmp_path, params) == 1


def test_a_local_run_without_image_matches_a_local_row(tmp_path: Path) -> None:
    record(tmp_path, image_sha256=None)
    assert done(tmp_path, image_sha256=None) == 1
    assert done(tmp_path) is None


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["outfile_name", "flag", "rate", "new"]), st.integers(-5, 5) | st.text(max_size=3))
)
def test_only_the_exact_parameters_are_done(tmp_path_factory: pytest.TempPathFactory, change: Dict[str, Any]) -> None:
    base = tmp_path_factory.mktemp("d")
    record(base)
    changed = {**PARAMS, **change}
    same = all(PARAMS.get(k) == v and type(PARAMS.get(k)) is type(v) for k, v in change.items())
    found = done(base, changed)
    if same:
        assert found == 1
    elif found is not None:  # only SQLite's affinity can make a differently typed value equal
        assert all(str(PARAMS.get(k)) == str(v) or PARAMS.get(k) == v for k, v in change.items())
