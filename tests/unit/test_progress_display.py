"""Live progress: plain lines off a terminal, bars on one, never both; build steps with their times."""

from __future__ import annotations

import io
import os
import re
import threading
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from images_fakes import install_fake_apptainer, make_paths, make_site, write_recipes
from rich.console import Console
from typer.testing import CliRunner

from lute_kernel.cli.app import app
from lute_kernel.cli.progress import RunDisplay, plain_line, wants_bar
from lute_kernel.events import RunEvent
from lute_kernel.images.build import build_images
from lute_kernel.images.build_steps import BuildSteps, step_line


def progress(done: float, total: Optional[float], message: str, rank: int = 0) -> RunEvent:
    count = f"{done:g}/{total:g}" if total is not None else f"{done:g}"
    return RunEvent("progress", f"[{count}] {message}", rank, done=done, total=total, message=message)


EVENTS = [
    RunEvent("log", "Test message 0"),
    progress(1, 10, "step 0"),
    RunEvent("log", "careful", level="WARNING", rank=2),
    progress(3, None, "counting", rank=1),
    RunEvent("stdout", "a line"),
    RunEvent("stderr", "oops"),
    RunEvent("status", "Test COMPLETED"),
]


def test_plain_lines_are_what_a_slurm_log_shows() -> None:
    out, err = io.StringIO(), io.StringIO()
    with RunDisplay(out, stderr=err) as display:
        assert not display.bar  # a StringIO is no terminal
        for event in EVENTS:
            display.sink()(event)
    assert out.getvalue().splitlines() == [
        "INFO    Test message 0",
        "progress [1/10] step 0",
        "[2] WARNING careful",
        "[1] progress [3] counting",
        "stdout: a line",
        "lute-kernel: Test COMPLETED",
    ]
    assert err.getvalue() == "stderr: oops\n"
    assert "\x1b" not in out.getvalue()
    assert plain_line(RunEvent("log", "x"), "node-a") == "node-a: INFO    x"


def test_on_a_terminal_progress_is_a_bar_and_only_a_bar() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system="standard")
    with RunDisplay(out, console=console, bar=True) as display:
        for event in EVENTS:
            display.sink("node")(event)
        assert display.progress is not None
        bars = {task.description: (task.completed, task.total) for task in display.progress.tasks}
    assert bars == {"node: step 0": (1.0, 10.0), "node rank 1: counting": (3.0, None)}
    text = out.getvalue()
    assert "━" in text  # rich's bar
    assert "progress [" not in text  # never also the plain progress line
    assert "node: INFO    Test message 0" in text and "lute-kernel: node: Test COMPLETED" in text


def test_a_pipe_is_not_a_terminal() -> None:
    assert not wants_bar(io.StringIO())


def test_many_threads_may_feed_one_display() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with RunDisplay(out, console=console, bar=True) as display:

        def feed(label: str) -> None:
            sink = display.sink(label)
            for i in range(50):
                sink(progress(i + 1, 50, f"{label} {i}"))

        threads = [threading.Thread(target=feed, args=(f"n{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert display.progress is not None
        assert sorted((t.completed, t.total) for t in display.progress.tasks) == [(50.0, 50.0)] * 4


def test_build_steps_are_apptainers_info_lines_with_their_times() -> None:
    seen: List[Tuple[str, Optional[str], float]] = []
    clock = iter([0.0, 1.5, 7.25, 9.0, 10.0])
    steps = BuildSteps("base", lambda *step: seen.append(step), clock=lambda: next(clock))
    steps.feed(b"INFO:    Starting bu")
    steps.feed(b"ild...\n+ apt-get install x\rprogress 50%\rINFO:    Running post scriptlet\n")
    steps.feed(b"INFO:    Creating SIF file...")  # no newline yet
    steps.finish()
    assert seen == [
        ("base", "Starting build...", 1.5),
        ("base", "Running post scriptlet", 7.25),
        ("base", "Creating SIF file...", 9.0),
        ("base", None, 10.0),
    ]
    assert step_line("base", "Running post scriptlet", 7.25) == "==> base: [   7.2 s] Running post scriptlet"


def test_images_build_reports_each_step_of_each_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env: Dict[str, str] = {"PATH": os.environ.get("PATH", "")}
    install_fake_apptainer(tmp_path / "fakebin", env)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    write_recipes(tmp_path / "recipes")
    steps: List[Tuple[str, Optional[str]]] = []
    outcomes = build_images(
        ["leaf"],
        make_site(),
        paths=make_paths(tmp_path),
        output=lambda chunk: None,
        status=lambda line: None,
        on_step=lambda image, step, seconds: steps.append((image, step)),
    )
    assert [o.action for o in outcomes] == ["built", "built"]
    assert [step for step in steps if step[1] is not None and "Build complete" not in step[1]] == [
        ("root", "Starting build..."),
        ("leaf", "Starting build..."),
    ]
    assert steps.count(("root", None)) == 1 and steps[-1] == ("leaf", None)


def test_the_cli_prints_step_lines_with_times_off_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env: Dict[str, str] = {"PATH": os.environ.get("PATH", "")}
    install_fake_apptainer(tmp_path / "fakebin", env)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    write_recipes(tmp_path / "recipes")
    monkeypatch.setenv("LUTE_RECIPES_DIR", str(tmp_path / "recipes"))
    monkeypatch.setenv("LUTE_IMAGES_DIR", str(tmp_path / "images"))
    monkeypatch.setenv("LUTE_IMAGE_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["images", "build", "root"])
    assert result.exit_code == 0, result.output
    assert re.search(r"^==> root: \[ +\d+\.\d s\] Starting build\.\.\.$", result.output, re.M), result.output
    assert "INFO:    Starting build..." in result.output  # apptainer's own output too: this is a log


def test_a_caller_with_its_own_live_display_shows_the_bars_itself() -> None:
    from rich.console import Group
    from rich.live import Live
    from rich.table import Table

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    display = RunDisplay(out, console=console, bar=True, live=False)  # what `flow run` does with its table
    assert display.progress is not None
    table = Table("node", "state")
    table.add_row("peaks", "running")
    with Live(Group(table, display.progress), console=console), display:
        display.sink("peaks")(progress(2, 4, "half"))
        display.sink("peaks")(RunEvent("log", "hello"))
    text = out.getvalue()
    assert "peaks: half" in text and "running" in text and "peaks: INFO    hello" in text
