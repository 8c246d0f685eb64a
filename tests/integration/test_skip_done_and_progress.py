"""`run --skip-done` / `--force` on a real DB, and `run`'s live progress: a bar on a terminal, lines elsewhere."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, Tuple

import pytest
from conftest import REPO, run_cli
from e2e import assert_no_leftovers, isolated_env, rows

pytestmark = [pytest.mark.integration]


def test_skip_done_reuses_the_row_until_forced_or_invalidated(
    make_config: Callable[..., Path], work_dir: Path, cli_env: Dict[str, str], tmp_path: Path
) -> None:
    env = isolated_env(cli_env, tmp_path / "t")
    config = make_config({"Test": {"compound_var": {"int_var": 5}, "sleep_secs": 0}})
    other = make_config({"Test": {"compound_var": {"int_var": 6}, "sleep_secs": 0}})
    other_run = make_config({"Test": {"compound_var": {"int_var": 5}, "sleep_secs": 0}}, run=15)

    first = run_cli("run", "Test", "-c", str(config), "--skip-done", env=env)
    assert first.returncode == 0 and "Test: COMPLETED" in first.stdout  # nothing done yet: it runs
    again = run_cli("run", "Test", "-c", str(config), "--skip-done", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"Test: already done: row 1 in {work_dir / 'lute.db'} (COMPLETED ")
    assert "--force runs it" in again.stdout and "progress" not in again.stdout
    assert len(rows(work_dir, "Test")) == 1

    for changed in (other, other_run):  # other parameters, another run: not done
        assert run_cli("run", "Test", "-c", str(changed), "--skip-done", env=env).returncode == 0
    assert len(rows(work_dir, "Test")) == 3

    forced = run_cli("run", "Test", "-c", str(config), "--skip-done", "--force", env=env)
    assert forced.returncode == 0 and "Test: COMPLETED" in forced.stdout
    assert "row 4" in forced.stdout
    again = run_cli("run", "Test", "-c", str(config), "--skip-done", env=env)
    assert "already done: row 4 " in again.stdout  # the newest matching row

    for row_id in ("1", "4"):
        assert run_cli("db", "invalidate", "Test", row_id, "-w", str(work_dir), env=env).returncode == 0
    rerun = run_cli("run", "Test", "-c", str(config), "--skip-done", env=env)
    assert rerun.returncode == 0 and "row 5" in rerun.stdout  # invalidated rows are not done
    assert [row["result.task_status"] for row in rows(work_dir, "Test")] == ["COMPLETED"] * 5
    assert_no_leftovers(tmp_path / "t")


def test_a_failed_run_is_not_done(make_config: Callable[..., Path], work_dir: Path, cli_env: Dict[str, str]) -> None:
    config = make_config({"Test": {"compound_var": {"int_var": 1}, "sleep_secs": 0, "throw_error": True}})
    for _ in range(2):
        assert run_cli("run", "Test", "-c", str(config), "--skip-done", env=cli_env).returncode == 1
    assert len(rows(work_dir, "Test")) == 2


def on_terminal(args: Tuple[str, ...], env: Dict[str, str]) -> Tuple[int, str]:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lute_kernel.cli", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=dict(env, TERM="xterm", COLUMNS="120"),
        cwd=REPO,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return proc.wait(timeout=60), shown.decode(errors="replace")


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere(
    make_config: Callable[..., Path], cli_env: Dict[str, str], tmp_path: Path
) -> None:
    env = isolated_env(cli_env, tmp_path / "t")
    config = make_config({"Test": {"compound_var": {"int_var": 1}, "sleep_secs": 0.02}})
    code, shown = on_terminal(("run", "Test", "-c", str(config)), env)
    assert code == 0, shown
    assert "━" in shown and "10/10" in shown  # rich's bar, to the end
    assert "progress [" not in shown  # never the plain lines as well
    assert "INFO    Test message 9" in shown and "Test: COMPLETED in " in shown

    piped = run_cli("run", "Test", "-c", str(config), env=env)
    assert piped.returncode == 0
    assert "progress [10/10] step 9" in piped.stdout.splitlines()
    assert "━" not in piped.stdout and "\x1b" not in piped.stdout + piped.stderr
    assert_no_leftovers(tmp_path / "t")
