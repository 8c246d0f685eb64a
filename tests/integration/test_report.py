"""`lute-kernel report` in headless Chromium: the page of a real DB loads offline, without console
errors or network requests, lists every run, and draws every figure (screenshots are not blank).

The runs are real (the CLI as a subprocess; ``TestSocket`` returns figures, a failing ``Test`` and a
failing binary give FAILED rows). Chromium is Debian's (``.ci/run`` installs it); without it the
tests skip, except in CI. With ``LUTE_SCREENSHOTS=<folder>`` the screenshots are copied there (the
README's come from ``LUTE_SCREENSHOTS=docs/images``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, Set, Tuple

import pytest
from chromium import Chromium, chromium_binary, non_white_pixels
from conftest import REPO, run_cli
from e2e import isolated_env, rows, tables

from lute_kernel.flow_record import FLOWS_DIR, write_flow_record

pytestmark = [pytest.mark.integration]

FIGURE_BOX = (
    "(function(i){var r=document.querySelector('[data-figure=\"'+i+'\"]').getBoundingClientRect();"
    "return {x:r.left+window.scrollX,y:r.top+window.scrollY,width:r.width,height:r.height};})"
)
LISTED = "Array.from(document.querySelectorAll('tr.run')).map(function(r){return [r.dataset.task, +r.dataset.row];})"
TRACES = (
    "Array.from(document.querySelectorAll('.figure')).map(function(d){return d.querySelectorAll('.trace').length;})"
)
MIN_INK = 3000
"""Pixels of a drawn figure that are not white (axes and labels alone give a few hundred)."""


@pytest.fixture(scope="module")
def browser_available() -> None:
    if chromium_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is needed in CI (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")


def keep_screenshot(path: Path, name: str) -> None:
    folder = os.environ.get("LUTE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(folder) / name)


def recorded_runs(work_dir: Path) -> Set[Tuple[str, int]]:
    found = set()
    for table in tables(work_dir):
        if table in ("gen_cfg", "exec_cfg", "sqlite_sequence"):
            continue
        found.update((table, row["id"]) for row in rows(work_dir, table))
    return found


def make_runs(make_config: Callable[..., Path], env: Dict[str, str], **runs: Any) -> Path:
    config = make_config(
        {
            "Test": {"compound_var": {"int_var": 1}, "sleep_secs": 0.02},
            "TestSocket": {"num_arrays": 8, "array_size": 5000},
            "TestWriteOutput": {"num_vals": 20},
            "TestBinaryErr": {"p_arg1": 1},
        }
    )
    failing = make_config({"Test": {"compound_var": {"int_var": 1}, "sleep_secs": 0, "throw_error": True}})
    for task, cfg, code in (
        ("Test", config, 0),
        ("TestSocket", config, 0),
        ("TestWriteOutput", config, 0),
        ("Test", failing, 1),
        ("TestBinaryErr", config, 1),
    ):
        done = run_cli("run", task, "-c", str(cfg), *runs.get(task, ()), env=env)
        assert done.returncode == code, done.stdout + done.stderr
    return config


def check_page(browser: Chromium, page: Path, shots: Path, expected_figures: int) -> List[Dict[str, Any]]:
    """Open a page; check it draws every figure without problems; return each figure's box."""
    browser.open(page.as_uri())
    state = browser.wait_until("window.luteFigures && window.luteFigures.done && window.luteFigures")
    assert state["failed"] == [], state
    assert state["expected"] == state["drawn"] == expected_figures, state
    assert browser.problems() == []  # no console error or warning, no exception, no network request
    assert all(count > 0 for count in browser.evaluate(TRACES))
    boxes = []
    for i in range(browser.evaluate("document.querySelectorAll('.figure').length")):
        box = browser.evaluate(f"{FIGURE_BOX}({i})")
        shot = browser.screenshot(shots / f"{page.stem}-figure-{i}.png", box)
        assert non_white_pixels(shot) > MIN_INK, f"figure {i} of {page} looks blank"
        boxes.append(box)
    return boxes


FLOW = {
    "name": "demo_dag.yaml",
    "dag": "/somewhere/demo_dag.yaml",
    "backend": "local",
    "started": "2026-12-01T10:00:00+00:00",
    "ended": "2026-12-01T10:00:09+00:00",
    "status": "FAILED",
    "steps": [
        {"id": 0, "label": "Tester", "task": "Test", "state": "COMPLETED", "upstream": [], "row": 1, "seconds": 0.4},
        {"id": 1, "label": "SocketTester", "task": "TestSocket", "state": "COMPLETED", "upstream": [0], "row": 1},
        {"id": 2, "label": "BinaryErrTester", "task": "TestBinaryErr", "state": "FAILED", "upstream": [0], "row": 1},
        {
            "id": 3,
            "label": "ReadTester",
            "task": "TestReadOutput",
            "state": "SKIPPED",
            "upstream": [1, 2],
            "reason": "an upstream step failed",
        },
    ],
}


def test_the_report_of_real_runs_in_headless_chromium(
    browser_available: None, make_config: Callable[..., Path], work_dir: Path, cli_env: Dict[str, str], tmp_path: Path
) -> None:
    env = isolated_env(cli_env, tmp_path / "t")
    site = tmp_path / "withelog.yaml"
    summary_root = tmp_path / "ds" / "{hutch}" / "{experiment}" / "stats" / "summary"
    site.write_text((REPO / "config" / "sites" / "local.yaml").read_text() + f"elog_summary_dir: {summary_root}\n")
    make_runs(make_config, env, TestSocket=("--site", str(site)))
    write_flow_record(work_dir / FLOWS_DIR / "demo-flow-1234abcd", FLOW)  # as a flow run leaves it (its writer)

    done = run_cli("report", "-w", str(work_dir), env=env)
    assert done.returncode == 0, done.stderr
    page = work_dir / "report.html"
    assert done.stdout.startswith(f"report: {page} (5 runs, 2 figures, ")

    with Chromium(tmp_path / "profile") as browser:
        check_page(browser, page, tmp_path / "shots", expected_figures=4)  # the timeline, the flow, TestSocket's two
        steps = browser.evaluate(
            "Array.from(document.querySelectorAll('section.flow tr[data-step]')).map(function(r){"
            "var a=r.querySelector('a'); return [r.dataset.step, r.dataset.state, a ? a.getAttribute('href') : null];})"
        )
        assert steps == [
            ["Tester", "COMPLETED", "#run-Test-1"],
            ["SocketTester", "COMPLETED", "#run-TestSocket-1"],
            ["BinaryErrTester", "FAILED", "#run-TestBinaryErr-1"],
            ["ReadTester", "SKIPPED", None],
        ]
        markers = browser.evaluate(
            "(function(){var d=document.querySelector('[data-flow=\"0\"]');"
            "return d.data.filter(function(t){return t.mode==='markers+text';})"
            ".map(function(t){return [t.name, t.x.length];});})()"
        )
        assert sorted(markers) == [["COMPLETED", 2], ["FAILED", 1], ["SKIPPED", 1]]
        box = browser.evaluate(FIGURE_BOX.replace("data-figure", "data-flow") + "(0)")
        shot = browser.screenshot(tmp_path / "shots" / "flow-dag.png", box)
        assert non_white_pixels(shot) > MIN_INK, "the flow's DAG looks blank"
        keep_screenshot(shot, "report-flow-dag.png")
        listed = {(task, row) for task, row in browser.evaluate(LISTED)}
        assert listed == recorded_runs(work_dir)
        statuses = browser.evaluate("Array.from(document.querySelectorAll('tr.run')).map(r => r.dataset.status)")
        assert sorted(statuses) == ["COMPLETED"] * 3 + ["FAILED"] * 2

        elog_page = Path(str(summary_root).format(hutch="xpp", experiment="xpptut15")) / "tests/socket/report.html"
        assert elog_page.is_file()
        check_page(browser, elog_page, tmp_path / "shots", expected_figures=2)

    stored = sorted(p.relative_to(work_dir).as_posix() for p in (work_dir / "figures").rglob("*.json"))
    assert stored == [
        "figures/TestSocket/1/index.json",
        "figures/TestSocket/1/tests/socket/array_statistics.json",
        "figures/TestSocket/1/tests/socket/payload_histogram.json",
    ]
    stats = json.loads((work_dir / "figures/TestSocket/1/tests/socket/array_statistics.json").read_text())
    mean = stats["data"][0]["y"]
    assert len(mean) == 8 and all(0.4 < value < 0.6 for value in mean)  # uniform [0, 1) values


def test_no_database_is_bad_input(cli_env: Dict[str, str], tmp_path: Path) -> None:
    done = run_cli("report", "-w", str(tmp_path), env=cli_env)
    assert done.returncode == 2
    assert done.stderr == f"error: no database at {tmp_path / 'lute.db'}\n"


@pytest.mark.apptainer
def test_smalldata_psana2_figures_are_its_per_event_sums(
    browser_available: None, make_config: Callable[..., Path], work_dir: Path, cli_env: Dict[str, str], tmp_path: Path
) -> None:
    from test_psana2 import EVENTS, _image_env, probe

    psana = _image_env()
    where = "import os, psana; print(os.path.dirname(os.path.dirname(psana.__file__)))"
    psana.site_packages = psana.run([psana.python, "-c", where], tmp_path).stdout.strip()
    data = work_dir / "xpptut15-r0014-s000-c000.xtc2"
    psana.run([psana.tool("xtcwriter"), "-f", str(data), "-n", str(EVENTS)], work_dir)

    env = isolated_env(cli_env, tmp_path / "t")
    make_runs(make_config, env)
    config = make_config({"SmallDataPsana2": {"files": [str(data)], "roi": [[0, 2], [1, 4]], "progress_every": 10}})
    done = run_cli("run", "SmallDataPsana2", "-c", str(config), "--runtime", "apptainer", env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    [row] = rows(work_dir, "SmallDataPsana2")
    folder = work_dir / "figures" / "SmallDataPsana2" / str(row["id"]) / "smalldata" / "xppcspad"
    per_event = json.loads((folder / "per_event.json").read_text())
    sums = probe(psana, work_dir, row["result.payload"], data)["datasets"]
    assert {trace["name"]: trace["y"] for trace in per_event["data"]} == {
        "xppcspad/sum": sums["xppcspad/sum"],
        "xppcspad/roi_sum": sums["xppcspad/roi_sum"],
    }
    histogram = json.loads((folder / "histogram.json").read_text())
    assert [sum(trace["y"]) for trace in histogram["data"]] == [EVENTS, EVENTS]

    assert run_cli("report", "-w", str(work_dir), env=env).returncode == 0
    shots = tmp_path / "shots"
    with Chromium(tmp_path / "profile", width=1400, height=1100) as browser:
        boxes = check_page(browser, work_dir / "report.html", shots, expected_figures=5)
        keep_screenshot(browser.screenshot(shots / "top.png"), "report.png")
        first = boxes[0]  # the newest run first: SmallDataPsana2's per-event sums
        clip = {"x": 0, "y": first["y"] - 220, "width": 1400, "height": first["height"] * 2 + 300}
        keep_screenshot(browser.screenshot(shots / "psana2.png", clip), "report-figures.png")
