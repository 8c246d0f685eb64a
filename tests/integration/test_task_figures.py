"""Figures from a Task's process to the disk: upstream's ElogSummaryPlots in the summary and payload,
add_figures, and Tasks that return too many figures or something that is not one (they fail)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict

import pytest
from conftest import run_cli
from e2e import only_row, rows

pytestmark = [pytest.mark.integration]


def test_every_form_reaches_the_figure_folder(
    make_config: Callable[..., Path], work_dir: Path, cli_env: Dict[str, str]
) -> None:
    done = run_cli("run", "FigureForms", "-c", str(make_config({"FigureForms": {}})), env=cli_env)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = work_dir / "figures" / "FigureForms" / "1"
    assert f"4 figure(s) kept in {folder}" in done.stdout
    stored = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.json"))
    assert stored == [
        "index.json",
        "ours/figure.json",
        "upstream/payload/only.json",
        "upstream/summary/figure_1.json",
        "upstream/summary/figure_2.json",
    ]
    assert json.loads((folder / "ours/figure.json").read_text())["data"][0]["y"] == [1, 2, None, 4]
    row = only_row(work_dir, "FigureForms")
    assert row["result.summary"] == ""  # the plots were all there was
    assert row["result.payload"] == '["the payload"]'
    assert json.loads((folder / "index.json").read_text())["start"] == row["prov.start"]


@pytest.mark.parametrize(
    ("form", "message"),
    [("too_many", "69 figures returned; at most 64"), ("not_a_figure", "a figure must be a plotly Figure")],
)
def test_a_task_returning_bad_figures_fails_saying_why(
    make_config: Callable[..., Path], work_dir: Path, cli_env: Dict[str, str], form: str, message: str
) -> None:
    done = run_cli("run", "FigureForms", "-c", str(make_config({"FigureForms": {"form": form}})), env=cli_env)
    assert done.returncode == 1
    assert message in done.stdout
    [row] = rows(work_dir, "FigureForms")
    assert row["result.task_status"] == "FAILED" and message in row["result.summary"]
    assert not (work_dir / "figures").exists()
