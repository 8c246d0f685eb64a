"""The report's parts: the runs read from rows, the timeline figure, the page (escaped, self-contained)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict

from lute_kernel.db import RunRecord, record_run
from lute_kernel.figure_store import store_figures
from lute_kernel.report import build_report, write_report
from lute_kernel.report.html import plotly_js, render_report
from lute_kernel.report.runs import entry_of, read_runs
from lute_kernel.report.timeline import MIN_BAR_FRACTION, timeline_figure

HEADER = {"title": "t", "experiment": "xpptut15", "run": 14, "date": "2026/11/22", "task_timeout": 60}


def row(task_id: int, status: str, start: str, end: Any, **extra: Any) -> Dict[str, Any]:
    return {
        "id": task_id,
        "result.task_status": status,
        "prov.start": start,
        "prov.end": end,
        "prov.host": "elsewhere",  # a RUNNING row of another host is shown as such, never LOST
        "valid_flag": 1 if status == "COMPLETED" else 0,
        "gen_cfg.experiment": "xpptut15",
        "gen_cfg.run": 14,
        "in_file": "a.txt",
        **extra,
    }


def test_an_entry_has_what_the_report_shows() -> None:
    entry = entry_of(
        "Test",
        row(
            3, "COMPLETED", "2026-12-01T10:00:00+00:00", "2026-12-01T10:00:02.5+00:00", **{"result.payload": '{"a": 1}'}
        ),
    )
    assert (entry.task, entry.row_id, entry.status, entry.valid, entry.seconds) == ("Test", 3, "COMPLETED", True, 2.5)
    assert (entry.experiment, entry.run, entry.anchor) == ("xpptut15", "14", "run-Test-3")
    assert entry.parameters == {"in_file": "a.txt"}
    assert entry.payload == '{\n "a": 1\n}'
    running = entry_of("Test", row(4, "RUNNING", "2026-12-01T10:00:00+00:00", None))
    assert running.status == "RUNNING (host elsewhere)" and running.seconds is None


def test_the_timeline_has_one_bar_per_run_one_trace_per_status() -> None:
    runs = [
        entry_of("Test", row(1, "COMPLETED", "2026-12-01T10:00:00+00:00", "2026-12-01T10:00:10+00:00")),
        entry_of("Test", row(2, "FAILED", "2026-12-01T10:00:20+00:00", "2026-12-01T10:01:40+00:00")),
        entry_of("Other", row(1, "COMPLETED", "2026-12-01T10:00:05+00:00", "2026-12-01T10:00:05.01+00:00")),
        entry_of("Other", row(2, "RUNNING", "2026-12-01T10:01:00+00:00", None)),
        entry_of("Other", row(3, "FAILED", None, None)),  # never started: not on the timeline
    ]
    figure = timeline_figure(runs)
    assert figure is not None
    by_status = {trace["name"]: trace for trace in figure["data"]}
    assert sorted(by_status) == ["COMPLETED", "FAILED", "RUNNING"]
    done = by_status["COMPLETED"]
    span_ms = 100_000.0
    assert done["y"] == ["Other", "Test"]
    assert done["base"] == ["2026-12-01T10:00:05+00:00", "2026-12-01T10:00:00+00:00"]
    assert done["x"] == [span_ms * MIN_BAR_FRACTION, 10_000.0]  # a 10 ms run is drawn at the least width
    assert by_status["FAILED"]["x"] == [80_000.0]
    assert by_status["RUNNING"]["x"] == [40_000.0]  # still going: up to the latest time seen
    assert by_status["RUNNING"]["customdata"] == ["Other row 2: RUNNING (host elsewhere), no end recorded"]
    assert figure["layout"]["yaxis"]["categoryarray"] == ["Test", "Other"]
    assert figure["layout"]["xaxis"]["type"] == "date"
    assert timeline_figure([]) is None


def test_the_page_escapes_what_runs_recorded_and_embeds_figures_as_data(tmp_path: Path) -> None:
    hostile = "</script><script>alert(1)</script>"
    entry = entry_of("Test", row(1, "COMPLETED", "2026-12-01T10:00:00+00:00", "2026-12-01T10:00:01+00:00"))
    entry.summary = hostile
    entry.figures = store_figures(
        tmp_path,
        "Test",
        1,
        "2026-12-01T10:00:00+00:00",
        [{"display_name": "d", "name": "f", "figure": {"data": [], "layout": {"title": {"text": hostile}}}}],
    )
    page = render_report("/w", "/w/lute.db", [entry], now=datetime(2026, 12, 1, tzinfo=timezone.utc))
    assert "<script>alert(1)" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the summary, escaped
    data = re.search(r'<script type="application/json" id="lute-figure-data">(.*?)</script>', page, re.S)
    assert data is not None
    payload = json.loads(data.group(1))
    assert payload["figures"][0]["spec"]["layout"]["title"]["text"] == hostile  # the same text, as data
    assert payload["timeline"]["data"][0]["name"] == "COMPLETED"
    assert 'data-figure="0"' in page
    assert plotly_js()[:200] in page  # plotly.js inside: nothing to fetch
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)


def test_a_report_lists_every_row_of_every_task_table(tmp_path: Path) -> None:
    for task, status in (("Test", "COMPLETED"), ("Test", "FAILED"), ("TestSocket", "COMPLETED")):
        start = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
        record = RunRecord(
            task_name=task,
            header=HEADER,
            parameters={"n": 1},
            task_status=status,
            summary=f"{task} {status}",
            payload=None,
            start=start,
            end=start,
        )
        record_run(tmp_path, record)
    runs = read_runs(tmp_path)
    assert sorted((r.task, r.row_id, r.status) for r in runs) == [
        ("Test", 1, "COMPLETED"),
        ("Test", 2, "FAILED"),
        ("TestSocket", 1, "COMPLETED"),
    ]
    page = build_report(tmp_path)
    assert len(re.findall(r'<tr class="run" ', page)) == 3
    written = write_report(tmp_path, tmp_path / "out" / "r.html")
    assert (written.runs, written.figures) == (3, 0)
    assert written.path.read_text().count('<tr class="run" ') == 3
