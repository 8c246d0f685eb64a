"""The lean `run` path: plain command lines skip typer and give the same lines, rows and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict

import pytest
from conftest import REPO

from lute_kernel.cli.lean import parse_run


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "Test", "-c", "x.yaml"],
        ["run", "Test", "--config", "x.yaml", "--site", "local", "--runtime", "local", "-n", "2"],
        ["run", "--config=x.yaml", "Tester", "--skip-done", "--force", "--launcher", "direct"],
    ],
)
def test_plain_run_lines_take_the_lean_path(argv: list) -> None:
    assert parse_run(argv) is not None


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["tasks"],
        ["run", "--help"],
        ["run", "Test", "-c", "x", "--help"],
        ["run", "Test"],  # missing -c: typer's usage error
        ["run", "Test", "-c", "x", "--ranks", "two"],
        ["run", "Test", "-c", "x", "--bogus"],
        ["run", "Test", "-c", "x", "--conf", "y"],  # no abbreviations: typer decides
        ["run", "--install-completion"],
    ],
)
def test_anything_else_goes_to_typer(argv: list) -> None:
    assert parse_run(argv) is None


def _cli(args: list, env: Dict[str, str], *, lean: bool) -> subprocess.CompletedProcess:
    code = (
        "import sys; sys.argv = ['lute-kernel', *sys.argv[1:]];"
        + ("" if lean else "import lute_kernel.cli.lean as l; l.lean_run = lambda argv: None;")
        + "from lute_kernel.cli import main; main()"
    )
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=REPO)


@pytest.mark.parametrize(
    ("section", "code"),
    [
        ({"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}}}, 0),
        ({"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}, "throw_error": True}}, 1),
        ({"Test": {"sleep_secs": 0, "compound_var": {"int_var": "not a number"}}}, 2),
    ],
    ids=["completed", "failed", "bad-input"],
)
def test_the_lean_path_prints_and_exits_as_typer_does(
    section: dict, code: int, make_config: Callable[..., Path], cli_env: Dict[str, str], work_dir: Path
) -> None:
    config = make_config(section)
    seen = []
    for lean in (True, False):
        done = _cli(["run", "Test", "-c", str(config)], cli_env, lean=lean)
        assert done.returncode == code, done.stdout + done.stderr
        last_out = done.stdout.splitlines()[-1].split(" in ")[0] if done.stdout else ""  # durations, rows differ
        last_err = done.stderr.splitlines()[-1] if code == 2 else ""
        seen.append((last_out, last_err))
    assert seen[0] == seen[1]


def test_a_lean_run_imports_neither_typer_nor_rich(make_config: Callable[..., Path], cli_env: Dict[str, str]) -> None:
    config = make_config({"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}}})
    probe = (
        "import sys, atexit; sys.argv = ['lute-kernel', 'run', 'Test', '-c', sys.argv[1]];"
        "atexit.register(lambda: print('LOADED', sorted(m for m in ('typer', 'rich', 'click', 'jinja2')"
        " if m in sys.modules), file=sys.stderr));"
        "from lute_kernel.cli import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(config)], capture_output=True, text=True, env=cli_env, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stderr
