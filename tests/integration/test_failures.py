"""A Task that raises, exits non-zero, is killed, times out or is cancelled: a row with that status,
valid_flag 0, the error text in the summary, no orphan process and no socket left behind.

Every case runs with both ways the local runtime starts a worker: forked from the kernel (the
default fast start) and exec'd (``LUTE_NO_FORK=1``).
"""

from __future__ import annotations

import re
import signal
import stat
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
from conftest import run_cli
from e2e import (
    TEST_BIN,
    LiveRun,
    assert_no_leftovers,
    isolated_env,
    last_line,
    only_row,
    processes_marked,
    run_dirs,
    wait_gone,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=["fork", "exec"])
def start_env(request: pytest.FixtureRequest, cli_env: Dict[str, str]) -> Dict[str, str]:
    """The CLI's environment for one worker start mode."""
    env = {k: v for k, v in cli_env.items() if k != "LUTE_NO_FORK"}
    if request.param == "exec":
        env["LUTE_NO_FORK"] = "1"
    return env


def _failed_row(work_dir: Path, task: str, status: str) -> Dict[str, Any]:
    row = only_row(work_dir, task)
    assert row["result.task_status"] == status, row["result.summary"]
    assert row["valid_flag"] == 0
    assert row["prov.end"] is not None
    return row


def _child_pid(output: str) -> int:
    match = re.search(r"child pid (\d+)", output)
    assert match, output
    return int(match.group(1))


@pytest.mark.parametrize(
    ("task", "section", "exit_code", "summary_parts"),
    [
        (
            "Test",
            {"compound_var": {"int_var": 1}, "throw_error": True, "sleep_secs": 0},
            1,
            ("RuntimeError", "Testing Error!"),
        ),
        (
            "TestBinaryErr",
            {"executable": str(TEST_BIN / "test_threads_err"), "p_arg1": 2},
            3,
            ("exited with code 3", "test_threads_err: simulated failure after threads finished"),
        ),
        ("FaultKillSelf", {}, -signal.SIGKILL, ("killed by SIGKILL",)),
    ],
    ids=["raises", "exits-non-zero", "killed"],
)
def test_failing_task_is_recorded_failed(
    task: str,
    section: Dict[str, Any],
    exit_code: int,
    summary_parts: tuple,
    make_config: Callable[..., Path],
    work_dir: Path,
    start_env: Dict[str, str],
    tmp_path: Path,
) -> None:
    config = make_config({task: section})
    tmpdir = tmp_path / "t"
    result = run_cli("run", task, "-c", str(config), env=isolated_env(start_env, tmpdir))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert last_line(result.stdout).startswith(f"{task}: FAILED in "), result.stdout
    row = _failed_row(work_dir, task, "FAILED")
    for part in summary_parts:
        assert part in row["result.summary"]
        assert part in result.stdout  # the final status line carries the summary too
    assert row["prov.exit_code"] == exit_code
    assert_no_leftovers(tmpdir)


def test_a_child_left_by_a_completed_task_does_not_outlive_it(
    make_config: Callable[..., Path], work_dir: Path, start_env: Dict[str, str], tmp_path: Path
) -> None:
    config = make_config({"FaultSleep": {"seconds": 0.05, "spawn_child": True}})
    tmpdir = tmp_path / "t"
    result = run_cli("run", "FaultSleep", "-c", str(config), env=isolated_env(start_env, tmpdir))
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert only_row(work_dir, "FaultSleep")["result.task_status"] == "COMPLETED"
    assert wait_gone(_child_pid(result.stdout)), "the Task's child outlived it"
    assert_no_leftovers(tmpdir)


def test_timeout_kills_the_whole_tree_and_is_recorded_timedout(
    make_config: Callable[..., Path], work_dir: Path, start_env: Dict[str, str], tmp_path: Path
) -> None:
    # 4 s: an exec'd worker on a busy machine must have started its child before the timeout.
    config = make_config({"FaultSleep": {"seconds": 30, "spawn_child": True}}, task_timeout=4)
    tmpdir = tmp_path / "t"
    result = run_cli("run", "FaultSleep", "-c", str(config), env=isolated_env(start_env, tmpdir), timeout=60)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert last_line(result.stdout).startswith("FaultSleep: TIMEDOUT in "), result.stdout
    row = _failed_row(work_dir, "FaultSleep", "TIMEDOUT")
    assert "timed out after 4 s" in row["result.summary"]
    assert row["prov.exit_code"] == -signal.SIGTERM
    assert wait_gone(_child_pid(result.stdout)), "the Task's child outlived the timeout"
    assert_no_leftovers(tmpdir)


def test_timeout_escalates_to_sigkill_when_the_task_ignores_sigterm(
    make_config: Callable[..., Path], work_dir: Path, start_env: Dict[str, str], tmp_path: Path
) -> None:
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "local.yaml").write_text("runtime: local\nlauncher: direct\nkill_grace_seconds: 0.3\n")
    config = make_config({"FaultSleep": {"seconds": 30, "spawn_child": True, "ignore_sigterm": True}}, task_timeout=4)
    tmpdir = tmp_path / "t"
    env = isolated_env(start_env, tmpdir, LUTE_SITES_DIR=str(sites))
    result = run_cli("run", "FaultSleep", "-c", str(config), env=env, timeout=30)
    assert result.returncode == 1, (result.stdout, result.stderr)
    row = _failed_row(work_dir, "FaultSleep", "TIMEDOUT")
    assert row["prov.exit_code"] == -signal.SIGKILL
    # The child inherited SIG_IGN for SIGTERM too: only the group's SIGKILL ends it.
    assert wait_gone(_child_pid(result.stdout)), "the Task's child outlived the SIGKILL"
    assert_no_leftovers(tmpdir)


def _check_while_running(tmpdir: Path, child: int) -> None:
    """The run directory is private and holds the socket; the Task's processes get the allowlisted env."""
    (run_dir,) = run_dirs(tmpdir)
    assert stat.S_IMODE((tmpdir / run_dir).stat().st_mode) == 0o700
    sockets = [p for p in (tmpdir / run_dir).iterdir() if p.is_socket()]
    assert len(sockets) == 1 and len(str(sockets[0])) < 107
    environ = dict(
        entry.split("=", 1) for entry in Path(f"/proc/{child}/environ").read_text().split("\0") if "=" in entry
    )
    assert environ.get("LUTE_TASK") == "FaultSleep"
    assert environ.get("TMPDIR") == str(tmpdir)
    assert "SECRET_TOKEN" not in environ


@pytest.mark.parametrize(
    "signum",
    [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT],
    ids=["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"],
)
def test_signal_to_the_kernel_cancels_the_task_and_its_children(
    signum: signal.Signals,
    make_config: Callable[..., Path],
    work_dir: Path,
    start_env: Dict[str, str],
    tmp_path: Path,
) -> None:
    config = make_config({"FaultSleep": {"seconds": 30, "spawn_child": True}})
    tmpdir = tmp_path / "t"
    env = isolated_env(start_env, tmpdir, SECRET_TOKEN="do-not-leak")
    with LiveRun("run", "FaultSleep", "-c", str(config), env=env) as live:
        child = _child_pid(live.wait_for("child pid"))
        live.wait_for("sleeping")
        _check_while_running(tmpdir, child)
        live.proc.send_signal(signum)
        code, out, err = live.finish(timeout=30)
    assert code == 1, (out, err)
    assert last_line(out).startswith("FaultSleep: CANCELLED in "), out
    row = _failed_row(work_dir, "FaultSleep", "CANCELLED")
    assert f"cancelled by {signum.name}" in row["result.summary"]
    assert wait_gone(child), "the Task's child outlived the cancellation"
    assert_no_leftovers(tmpdir)


def test_a_killed_kernel_takes_its_task_along_and_leaves_a_visible_row(
    make_config: Callable[..., Path],
    work_dir: Path,
    start_env: Dict[str, str],
    tmp_path: Path,
) -> None:
    # SIGKILL cannot be handled: the worker must die anyway (the dead man's switch), the RUNNING
    # row stays (shown LOST by `db ls/show`), and the next run removes the dead kernel's run dir.
    config = make_config(
        {"FaultSleep": {"seconds": 60, "spawn_child": True}, "Test": {"sleep_secs": 0, "compound_var": {}}}
    )
    tmpdir = tmp_path / "t"
    env = isolated_env(start_env, tmpdir)
    with LiveRun("run", "FaultSleep", "-c", str(config), env=env) as live:
        child = _child_pid(live.wait_for("child pid"))
        live.wait_for("sleeping")
        workers = processes_marked("LUTE_TASK=FaultSleep")
        live.proc.send_signal(signal.SIGKILL)
        live.finish(timeout=30)
    assert workers and all(wait_gone(pid) for pid in workers), "the worker outlived its kernel"
    assert wait_gone(child), "the Task's child outlived its kernel"
    assert len(run_dirs(tmpdir)) == 1  # nobody was left to remove it
    row = only_row(work_dir, "FaultSleep")
    assert row["result.task_status"] == "RUNNING" and row["valid_flag"] == 0
    shown = run_cli("db", "show", "FaultSleep", "-w", str(work_dir), env=env)
    assert "LOST" in shown.stdout, shown.stdout
    assert run_cli("run", "Test", "-c", str(config), env=env).returncode == 0
    assert run_dirs(tmpdir) == [], "the next run must remove a dead kernel's run directory"
