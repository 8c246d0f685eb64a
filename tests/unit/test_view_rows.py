"""The DB viewer's pure parts: the filter, the list columns, cells and the detail of a row."""

from __future__ import annotations

from typing import Any, Dict

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from lute_kernel.cli.export import export_text
from lute_kernel.cli.view_rows import RowFilter, cell, detail_table, list_columns, parse_filter, status_style

ROW: Dict[str, Any] = {
    "id": 4,
    "timestamp": "2026-12-01 10:00:00",
    "gen_cfg_id": 1,
    "exec_cfg_id": 1,
    "in_file": "/data/run14.h5",
    "n.m[0]": 1,
    "tag": "lyso",
    "extra": None,
    "result.task_status": "FAILED",
    "result.summary": "boom",
    "valid_flag": 0,
    "prov.argv": '["python", "-m", "lute_kernel.worker"]',
    "gen_cfg.run": 14,
    "gen_cfg.experiment": "xpptut15",
}


def test_filters_parse_into_statuses_runs_and_words() -> None:
    assert parse_filter("status:failed run:14 Lyso h5") == RowFilter(("FAILED",), ("14",), ("lyso", "h5"))
    assert parse_filter("") == RowFilter()
    assert parse_filter("status: run:") == RowFilter(words=("status:", "run:"))


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("", True),
        ("status:FAILED", True),
        ("status:completed", False),
        ("status:completed status:failed", True),
        ("run:14", True),
        ("run:15", False),
        ("LYSO", True),
        ("lyso run14", True),
        ("lyso nothere", False),
        ("xpptut15", True),
    ],
)
def test_every_term_must_hold(text: str, matches: bool) -> None:
    assert parse_filter(text).matches(ROW) is matches


def test_a_running_row_of_another_host_is_running() -> None:
    assert parse_filter("status:running").matches({**ROW, "result.task_status": "RUNNING (host other)"})
    assert status_style("RUNNING (host other)") == status_style("RUNNING") == "cyan"


def test_shared_tables_are_filtered_by_words_only() -> None:
    config = {"id": 1, "experiment": "xpptut15", "run": 14}
    assert parse_filter("status:FAILED run:99 xpp").matches(config)


@given(st.text(max_size=30))
def test_any_filter_text_parses_and_applies(text: str) -> None:
    parse_filter(text).matches(ROW)


def test_task_lists_show_the_fixed_columns_then_a_few_parameters() -> None:
    assert list_columns("Test", [ROW]) == [
        ("id", "id"),
        ("timestamp", "timestamp"),
        ("result.task_status", "status"),
        ("valid_flag", "valid"),
        ("gen_cfg.run", "run"),
        ("result.summary", "summary"),
        ("in_file", "in_file"),
        ("n.m[0]", "n.m[0]"),
        ("tag", "tag"),
    ]
    assert list_columns("gen_cfg", [{"id": 1, "run": 14}]) == [("id", "id"), ("run", "run")]


def test_cells_colour_statuses_and_cut_long_text() -> None:
    assert cell("result.task_status", "FAILED").style == "bold red"
    assert str(cell("valid_flag", 1)) == "yes" and str(cell("valid_flag", 0)) == "no"
    assert str(cell("x", None)) == "-"
    assert str(cell("x", "a\\nb")) == "a\\nb"
    long = str(cell("x", "y" * 100))
    assert len(long) == 48 and long.endswith("…")


def test_the_detail_shows_every_column_whole_with_json_laid_out() -> None:
    console = Console(width=60, record=True)
    console.print(detail_table("Test #4", {**ROW, "result.summary": "w" * 150}))
    text = console.export_text()
    for name in ROW:
        assert name in text
    assert '"lute_kernel.worker"' in text and "NULL" in text
    assert text.count("w") >= 150  # folded over lines, never cut


def test_export_formats() -> None:
    rows = [{"id": 1, "a": None, "b": b"x"}, {"id": 2, "c": 'say "hi", ok'}]
    assert export_text(rows, "csv") == 'id,a,b,c\n1,,x,\n2,,,"say ""hi"", ok"\n'
    assert export_text(rows, "json") == (
        '[\n {\n  "id": 1,\n  "a": null,\n  "b": "x"\n },\n {\n  "id": 2,\n  "c": "say \\"hi\\", ok"\n }\n]\n'
    )
