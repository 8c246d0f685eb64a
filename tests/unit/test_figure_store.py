"""Figures kept next to the DB: layout, strict JSON, the index that ties them to one run; eLog pages."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lute_kernel.figure_store import INDEX_FILE, json_ready, load_figures, row_folder, store_figures
from lute_kernel.figures import MAX_FIGURES, FigureError
from lute_kernel.report import write_summary_pages
from lute_kernel.sites import SiteProfile

START = "2026-12-01T10:00:00.123456+00:00"
SPEC: Dict[str, Any] = {"data": [{"type": "scatter", "y": [1.0, float("nan"), 3.0]}], "layout": {}}


def _figures(*names: str, display_name: str = "tests/socket") -> List[Dict[str, Any]]:
    return [{"display_name": display_name, "name": name, "figure": SPEC} for name in names]


def test_json_ready_makes_strict_json() -> None:
    value = {"a": np.arange(3), "b": (1.5, float("inf"), -math.inf), "c": np.float32(2.5), 1: None, "d": {1, 2}}
    ready = json_ready(value)
    assert ready == {"a": [0, 1, 2], "b": [1.5, None, None], "c": 2.5, "1": None, "d": "{1, 2}"}
    json.dumps(ready, allow_nan=False)
    with pytest.raises(FigureError, match="levels deep"):
        nested: Any = []
        for _ in range(100):
            nested = [nested]
        json_ready(nested)


def test_figures_are_stored_per_row_with_their_index(tmp_path: Path) -> None:
    stored = store_figures(tmp_path, "TestSocket", 7, START, _figures("a", "b") + _figures("c", display_name="x"))
    folder = tmp_path / "figures" / "TestSocket" / "7"
    assert row_folder(tmp_path, "TestSocket", 7) == folder
    assert [f.path for f in stored] == [
        folder / "tests/socket/a.json",
        folder / "tests/socket/b.json",
        folder / "x/c.json",
    ]
    assert json.loads((folder / "tests/socket/a.json").read_text()) == {
        "data": [{"type": "scatter", "y": [1.0, None, 3.0]}],
        "layout": {},
    }
    index = json.loads((folder / INDEX_FILE).read_text())
    assert index["start"] == START and index["row_id"] == 7 and index["task"] == "TestSocket"
    assert [entry["file"] for entry in index["figures"]] == ["tests/socket/a.json", "tests/socket/b.json", "x/c.json"]
    loaded = load_figures(tmp_path, "TestSocket", 7, START)
    assert [(f.display_name, f.name) for f in loaded] == [("tests/socket", "a"), ("tests/socket", "b"), ("x", "c")]
    assert loaded[0].spec["data"][0]["y"] == [1.0, None, 3.0]
    assert not list(folder.rglob(".*"))  # no temporary files left


def test_figures_of_another_run_with_the_same_row_id_are_not_shown(tmp_path: Path) -> None:
    store_figures(tmp_path, "Test", 1, START, _figures("a"))
    assert load_figures(tmp_path, "Test", 1, "2027-01-01T00:00:00+00:00") == []  # a new lute.db reused the id
    assert load_figures(tmp_path, "Test", 2, START) == []
    (row_folder(tmp_path, "Test", 1) / INDEX_FILE).write_text("not json")
    assert load_figures(tmp_path, "Test", 1, START) == []


@pytest.mark.parametrize(
    ("figures", "message"),
    [
        ("x", "must be a list"),
        ([{"display_name": "a", "name": "b"}], "each figure"),
        ([{"display_name": "../a", "name": "b", "figure": {}}], "display_name"),
        ([{"display_name": "a", "name": "b/c", "figure": {}}], "figure name"),
        (_figures("a", "a"), "sent twice"),
        (_figures(*(f"f{i}" for i in range(MAX_FIGURES + 1))), f"at most {MAX_FIGURES}"),
    ],
)
def test_what_a_worker_sends_is_checked_again_and_nothing_is_written(
    tmp_path: Path, figures: Any, message: str
) -> None:
    with pytest.raises(FigureError, match=message):
        store_figures(tmp_path, "Test", 1, START, figures)
    assert not (tmp_path / "figures").exists()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.fixed_dictionaries({"display_name": st.text(max_size=20), "name": st.text(max_size=12)}), max_size=3)
)
def test_whatever_names_arrive_nothing_is_written_outside_the_row_folder(
    tmp_path_factory: pytest.TempPathFactory, entries: List[Dict[str, str]]
) -> None:
    base = tmp_path_factory.mktemp("w")
    figures = [{**entry, "figure": {"data": []}} for entry in entries]
    try:
        store_figures(base, "Test", 1, START, figures)
    except FigureError:
        assert not (base / "figures").exists()
        return
    folder = row_folder(base, "Test", 1).resolve()
    for path in base.rglob("*"):
        if path.is_file():
            assert folder in path.resolve().parents


def test_summary_pages_go_where_the_elog_looks(tmp_path: Path) -> None:
    stored = store_figures(tmp_path / "w", "Test", 1, START, _figures("a", "b") + _figures("c", display_name="geom"))
    site = SiteProfile(name="s", elog_summary_dir=str(tmp_path / "ds/{hutch}/{experiment}/stats/summary/r{run}"))
    root = site.elog_summary_root("xpptut15", 14)
    assert root == tmp_path / "ds/xpp/xpptut15/stats/summary/r14"
    pages = write_summary_pages(root, stored)
    assert pages == [root / "tests/socket/report.html", root / "geom/report.html"]
    page = pages[0].read_text()
    assert page.count('class="figure"') == 2 and "Plotly.newPlot" in page
    assert "<script src" not in page and 'http-equiv="Content-Security-Policy"' in page
    assert oct(pages[0].stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize(
    ("template", "message"),
    [("relative/{run}", "absolute"), ("/x/{user}", "unknown placeholder {user}"), ("/x/{run", "not a folder")],
)
def test_the_summary_folder_template_is_checked_when_the_profile_loads(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SiteProfile(name="s", elog_summary_dir=template)
    assert SiteProfile(name="s").elog_summary_root("xpptut15", 1) is None
