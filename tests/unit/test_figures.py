"""Figures on their way from a Task: plotly specs, ElogSummaryPlots, the names that become paths."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Dict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lute_kernel.figures import (
    MAX_FIGURES,
    ElogSummaryPlots,
    FigureError,
    check_display_name,
    check_figure_name,
    figure_messages,
    figure_spec,
    split_plots,
)
from lute_kernel.task import Task, TaskParameters

LINE: Dict[str, Any] = {"data": [{"type": "scatter", "y": [1, 2, 3]}], "layout": {"title": {"text": "t"}}}


class _HasPlotlyJson:
    def to_plotly_json(self) -> Dict[str, Any]:
        return {"data": [{"type": "bar", "y": [1]}], "layout": {}}


class _HasToDict:
    def to_dict(self) -> Dict[str, Any]:
        return {"data": [], "layout": {"height": 300}, "frames": [{"name": "f0"}]}


def test_a_dict_spec_is_kept_as_plain_data() -> None:
    assert figure_spec(LINE) == LINE
    assert figure_spec({"data": []}) == {"data": [], "layout": {}}


def test_objects_with_plotlys_methods_become_their_data() -> None:
    assert figure_spec(_HasPlotlyJson()) == {"data": [{"type": "bar", "y": [1]}], "layout": {}}
    assert figure_spec(_HasToDict()) == {"data": [], "layout": {"height": 300}, "frames": [{"name": "f0"}]}


def test_a_real_plotly_figure_becomes_its_json_data() -> None:
    go = pytest.importorskip("plotly.graph_objects")
    spec = figure_spec(go.Figure(go.Scatter(x=[1, 2], y=[3, 4], name="s"), layout={"title": {"text": "T"}}))
    assert spec["data"][0]["type"] == "scatter" and list(spec["data"][0]["y"]) == [3, 4]
    assert spec["layout"]["title"]["text"] == "T"


@pytest.mark.parametrize(
    ("figure", "message"),
    [
        (b"<html>", "plotly Figure or a dict"),
        (object(), "not object"),
        ({"data": "x"}, "list of traces"),
        ({"data": [1]}, "each trace"),
        ({"data": [], "layout": []}, "'layout' must be a dict"),
        ({"data": [], "script": "x"}, "not 'script'"),
    ],
)
def test_anything_else_is_refused_saying_what_a_figure_is(figure: Any, message: str) -> None:
    with pytest.raises(FigureError, match=message):
        figure_spec(figure)


def test_plots_name_their_figures_by_key_or_position() -> None:
    assert [n for n, _ in ElogSummaryPlots("a", LINE).specs] == ["figure"]
    assert [n for n, _ in ElogSummaryPlots("a", [LINE]).specs] == ["figure"]
    assert [n for n, _ in ElogSummaryPlots("a", [LINE, LINE]).specs] == ["figure_1", "figure_2"]
    assert [n for n, _ in ElogSummaryPlots("a/b", {"sums": LINE, "hist": LINE}).specs] == ["sums", "hist"]


def test_messages_carry_display_name_name_and_spec() -> None:
    plots = [ElogSummaryPlots("scans/motor", {"sums": LINE}), ElogSummaryPlots("other", LINE)]
    assert figure_messages(plots) == [
        {"display_name": "scans/motor", "name": "sums", "figure": LINE},
        {"display_name": "other", "name": "figure", "figure": LINE},
    ]
    with pytest.raises(FigureError, match="returned twice"):
        figure_messages([ElogSummaryPlots("a", LINE), ElogSummaryPlots("a", LINE)])
    with pytest.raises(FigureError, match=f"at most {MAX_FIGURES}"):
        figure_messages([ElogSummaryPlots("a", {f"f{i}": LINE for i in range(MAX_FIGURES + 1)})])


def test_upstream_style_plots_are_taken_out_of_summary_and_payload() -> None:
    plot = ElogSummaryPlots("a", LINE)
    assert split_plots(plot) == (None, [plot])
    assert split_plots(["x", plot]) == (["x"], [plot])
    assert split_plots([plot]) == (None, [plot])
    assert split_plots({"k": 1}) == ({"k": 1}, [])
    assert split_plots("text") == ("text", [])


@pytest.mark.parametrize(
    "name", ["", "/abs", "a//b", "../up", "a/../b", "./a", ".hidden", "a/", "a\\b", "a\0b", "x" * 101, "a/" * 9 + "a"]
)
def test_display_names_that_are_not_plain_relative_paths_are_refused(name: str) -> None:
    with pytest.raises(FigureError):
        check_display_name(name)


@given(st.text(max_size=60))
def test_any_accepted_display_name_stays_inside_its_folder(name: str) -> None:
    try:
        checked = check_display_name(name)
    except FigureError:
        return
    path = PurePosixPath(checked)
    assert not path.is_absolute() and ".." not in path.parts and "." not in path.parts
    assert all(part and not part.startswith((".", " ")) for part in checked.split("/"))
    assert "\\" not in checked and "\0" not in checked


@given(st.text(max_size=40))
def test_any_accepted_figure_name_is_one_file_name(name: str) -> None:
    try:
        checked = check_figure_name(name)
    except FigureError:
        return
    assert "/" not in checked and checked not in (".", "..") and not checked.startswith(".")


class _Plotting(Task):
    class Parameters(TaskParameters):
        pass

    def run(self) -> None:
        self.add_figures("tests/plots", {"sums": {"data": [{"type": "scatter", "y": np.arange(3)}]}})


def test_a_task_attaches_figures_to_its_result() -> None:
    result = _Plotting.run_standalone({"lute_config": {"work_dir": "/tmp"}})
    [plots] = result.figures
    assert plots.display_name == "tests/plots"
    [(name, spec)] = plots.specs
    assert name == "sums" and list(spec["data"][0]["y"]) == [0, 1, 2]
    with pytest.raises(FigureError):
        _Plotting(_Plotting.Parameters.model_validate({"lute_config": {"work_dir": "/tmp"}})).add_figures("../x", LINE)
