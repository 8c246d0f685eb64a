"""A flow run's record (``lute_kernel.flow_record``) and the report's drawing of its DAG.

The record round-trips through its writer and reader; whatever a damaged or foreign file holds,
reading never raises and yields a record or nothing (generated cases); the DAG puts every step to
the right of the steps it waits for, terminates on cycles, and the report links each step to its run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lute_kernel.flow_record import (
    FLOWS_DIR,
    FlowRecord,
    FlowStep,
    parse_flow_record,
    read_flow_records,
    write_flow_record,
)
from lute_kernel.report.flow_graph import flow_figure
from lute_kernel.report.html import render_report
from lute_kernel.report.runs import RunEntry

STEPS: List[Dict[str, Any]] = [
    {"id": 0, "label": "A", "task": "Test", "state": "COMPLETED", "upstream": [], "row": 3, "seconds": 1.5},
    {"id": 1, "label": "B", "task": "TestSocket", "state": "FAILED", "upstream": [0], "row": 1},
    {"id": 2, "label": "C", "task": "TestReadOutput", "state": "SKIPPED", "upstream": [0, 1], "rule": "ALL_SUCCESS"},
]
RECORD = {"name": "d.yaml", "dag": "/x/d.yaml", "backend": "local", "started": "2026-12-01T10:00:00+00:00",
          "ended": "2026-12-01T10:01:00+00:00", "status": "FAILED", "steps": STEPS}  # fmt: skip


def test_a_record_round_trips_and_the_newest_comes_first(tmp_path: Path) -> None:
    write_flow_record(tmp_path / FLOWS_DIR / "old", {**RECORD, "started": "2026-11-30T00:00:00+00:00"})
    write_flow_record(tmp_path / FLOWS_DIR / "new", RECORD)
    (tmp_path / FLOWS_DIR / "broken").mkdir()
    (tmp_path / FLOWS_DIR / "broken" / "flow.json").write_text("{not json")
    (tmp_path / FLOWS_DIR / "sweep-only").mkdir()  # a flow run that ended before writing its record
    records = read_flow_records(tmp_path)
    assert [r.folder for r in records] == ["new", "old"]
    assert [(s.label, s.state, s.upstream, s.row) for s in records[0].steps] == [
        ("A", "COMPLETED", [], 3),
        ("B", "FAILED", [0], 1),
        ("C", "SKIPPED", [0, 1], None),
    ]
    assert read_flow_records(tmp_path / "nowhere") == []


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=25,
)
step_like = st.fixed_dictionaries(
    {"id": st.one_of(st.integers(-2, 6), json_values)},
    optional={"label": json_values, "state": json_values, "row": json_values, "seconds": json_values,
              "upstream": st.one_of(st.lists(st.integers(-2, 8)), json_values), "task": json_values},
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, st.fixed_dictionaries({"v": st.just(1), "steps": st.lists(step_like, max_size=8)})))
def test_any_file_content_reads_as_a_record_or_nothing_and_always_draws(data: Any) -> None:
    record = parse_flow_record(data)
    if record is None:
        return
    figure = flow_figure(record)
    if record.steps:
        assert figure is not None
        json.dumps(figure)  # plain JSON for the page
        known = {s.id for s in record.steps}
        assert all(u in known for s in record.steps for u in s.upstream)


def test_every_step_is_drawn_right_of_what_it_waits_for() -> None:
    record = parse_flow_record({"v": 1, **RECORD})
    assert record is not None
    figure = flow_figure(record)
    assert figure is not None
    x_of = {}
    for trace in figure["data"][1:]:
        for label, x in zip(trace["text"], trace["x"]):
            x_of[label] = x
    assert x_of == {"A": 0.0, "B": 1.0, "C": 2.0}


def test_a_cycle_in_a_damaged_record_still_draws() -> None:
    steps = [FlowStep(id=0, label="a", task="T", state="COMPLETED", upstream=[1]),
             FlowStep(id=1, label="b", task="T", state="COMPLETED", upstream=[0])]  # fmt: skip
    figure = flow_figure(FlowRecord("f", "", "local", "", "", "COMPLETED", steps))
    assert figure is not None


def test_the_report_lists_the_flow_with_links_to_recorded_runs() -> None:
    record = parse_flow_record({"v": 1, **RECORD}, "run-folder")
    assert record is not None
    run = RunEntry(**{**_RUN_FIELDS, "task": "Test", "row_id": 3})
    page = render_report("/w", "/w/lute.db", [run], flows=[record])
    assert '<section class="flow" id="flow-0" data-flow-folder="run-folder">' in page
    assert '<a href="#run-Test-3">3</a>' in page  # a step whose run is in the DB links to it
    assert 'data-step="B" data-state="FAILED"' in page and "#run-TestSocket-1" not in page  # not in this DB


_RUN_FIELDS: Dict[str, Any] = {
    "status": "COMPLETED", "recorded_status": "COMPLETED", "valid": True, "start": None, "end": None,
    "seconds": None, "host": "h", "runtime": "local", "launcher": "direct", "image": "", "image_sha256": "",
    "exit_code": 0, "kernel_version": "0.1.0", "experiment": "x", "run": "1", "ranks": None, "config": "",
    "summary": "", "payload": "",
}  # fmt: skip
