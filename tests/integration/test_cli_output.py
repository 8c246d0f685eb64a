"""What people see: ``run`` streams log lines and progress as they happen; ``--help`` works everywhere."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List

import pytest
from conftest import run_cli
from e2e import LiveRun, assert_no_leftovers, isolated_env, last_line

pytestmark = pytest.mark.integration

STEP_S = 0.1


def test_run_streams_log_and_progress_live_then_a_final_status_line(
    make_config: Callable[..., Path], cli_env: Dict[str, str], tmp_path: Path
) -> None:
    config = make_config({"Test": {"compound_var": {"int_var": 2}, "sleep_secs": STEP_S}})
    tmpdir = tmp_path / "t"
    with LiveRun("run", "Test", "-c", str(config), env=isolated_env(cli_env, tmpdir)) as live:
        live.wait_for("Test message 0")
        code, out, err = live.finish()
    assert code == 0, err
    lines = [line for _, _, line in live.lines]
    for i in range(10):
        assert any(line.endswith(f"Test message {i}") and "INFO" in line for line in lines), out
        assert f"progress [{i + 1}/10] step {i}" in lines, out
    assert "lute-kernel: Test COMPLETED" in lines
    assert last_line(out).startswith("Test: COMPLETED in ")
    assert "Test Finished." in last_line(out)

    # Live, not flushed at the end: the first log line arrived while the kernel was still running,
    # and the Task's ten steps (STEP_S each) separate it from the final status line.
    first = next(entry for entry in live.lines if entry[2].endswith("Test message 0"))
    final = live.lines[-1]
    assert first[1], "the first log line only arrived after the kernel exited"
    assert final[0] - first[0] >= 5 * STEP_S, "log lines were not printed as they happened"
    assert_no_leftovers(tmpdir)


COMMANDS: List[List[str]] = [
    [],
    ["run"],
    ["explain"],
    ["validate"],
    ["tasks"],
    ["config"],
    ["config", "show"],
    ["db"],
    ["db", "ls"],
    ["db", "show"],
    ["db", "invalidate"],
]


def test_help_works_on_every_command_and_sub_command(cli_env: Dict[str, str]) -> None:
    env = dict(cli_env, COLUMNS="200")
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda cmd: run_cli(*cmd, "--help", env=env), COMMANDS))
    for command, result in zip(COMMANDS, results):
        shown = " ".join(command) or "(top level)"
        assert result.returncode == 0, (shown, result.stderr)
        assert "Usage:" in result.stdout, shown
        assert " ".join(["lute_kernel.cli", *command]).strip() in " ".join(result.stdout.split()), shown
        assert "--help" in result.stdout, shown
        assert result.stderr == "", shown
    by_command = {" ".join(c): r.stdout for c, r in zip(COMMANDS, results)}
    for leaf in ("run", "explain", "validate", "config show"):
        assert "--config" in by_command[leaf], leaf
    for group, subcommands in (("", ("run", "explain", "validate", "tasks", "config", "db")), ("db", ("ls", "show"))):
        for sub in subcommands:
            assert sub in by_command[group], (group, sub)
