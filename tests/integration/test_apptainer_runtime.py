"""The Apptainer runtime for real: Tasks in the smoke image, talking to the kernel over the bound socket.

Marked ``apptainer``: CI installs Apptainer and builds the images first (``.ci/run``); the session
fixture builds the smoke image when it is missing (a no-op when it is built).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
from conftest import REPO, run_cli
from e2e import LiveRun, isolated_env, only_row, processes_marked, run_dirs, smoke_sif, wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.apptainer]
__all__ = ["smoke_sif"]  # a fixture of e2e's, used here

TEST_BIN = REPO / "tasks" / "bin"


@pytest.fixture
def env(cli_env: Dict[str, str], tmp_path: Path) -> Dict[str, str]:
    marker = uuid.uuid4().hex
    return isolated_env(cli_env, tmp_path / "tmp", LUTE_TEST_MARKER=marker, HIDDEN_HOST_VAR="from-the-host")


def _marker(env: Dict[str, str]) -> str:
    return f"LUTE_TEST_MARKER={env['LUTE_TEST_MARKER']}\0"


def _no_leftovers(env: Dict[str, str]) -> None:
    assert run_dirs(Path(env["TMPDIR"])) == []
    left = [pid for pid in processes_marked(_marker(env)) if not wait_gone(pid)]
    assert left == [], f"container processes left running: {left}"


def test_every_message_kind_crosses_the_container_boundary(
    smoke_sif: Dict[str, Any], make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    cfg = make_config({"TestSocket": {"array_size": 1000, "num_arrays": 3}, "Test": {"compound_var": {"int_var": 1}}})
    socket_run = run_cli("run", "TestSocket", "-c", str(cfg), "--runtime", "apptainer", env=env)
    assert socket_run.returncode == 0, socket_run.stdout + socket_run.stderr
    assert "progress [3/3] Sending array 2" in socket_run.stdout  # progress + raw array buffers
    assert "TestSocket: COMPLETED" in socket_run.stdout  # result, then bye
    test_run = run_cli("run", "Test", "-c", str(cfg), "--runtime", "apptainer", env=env)
    assert "INFO    Test message 9" in test_run.stdout  # Python logging forwarded from inside
    failing = make_config({"Test": {"compound_var": {"int_var": 1}, "throw_error": True, "sleep_secs": 0}})
    error_run = run_cli("run", "Test", "-c", str(failing), "--runtime", "apptainer", env=env)
    assert error_run.returncode == 1 and "RuntimeError: Testing Error!" in error_run.stdout  # error message
    row = only_row(work_dir, "TestSocket")
    assert row["prov.runtime"] == "apptainer"
    assert row["prov.image"] == "smoke" and row["prov.image_sha256"] == smoke_sif["sha256"]
    argv = json.loads(row["prov.argv"])
    assert argv[:2] == ["apptainer", "exec"] and smoke_sif["runnable"] in argv
    _no_leftovers(env)


def test_environment_home_and_binds_are_isolated(
    smoke_sif: Dict[str, Any], make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str], tmp_path: Path
) -> None:
    host_home_file = Path.home() / f".lute-probe-{uuid.uuid4().hex}"
    host_home_file.write_text("host only\n")
    try:
        cfg = make_config({"ProbeEnvironment": {"host_file": str(host_home_file)}})
        result = run_cli("run", "ProbeEnvironment", "-c", str(cfg), "--runtime", "apptainer", env=env)
    finally:
        host_home_file.unlink()
    assert result.returncode == 0, result.stdout + result.stderr
    payload = json.loads(only_row(work_dir, "ProbeEnvironment")["result.payload"])
    inside = payload["env"]
    assert payload["in_container"] is True
    assert "HIDDEN_HOST_VAR" not in inside  # not on the allowlist
    assert inside["LUTE_TEST_MARKER"] == env["LUTE_TEST_MARKER"]  # LUTE_* is
    assert inside["PYTHONNOUSERSITE"] == "1"
    assert "LUTE_IPC_TOKEN" in inside and inside["LUTE_IPC_ENDPOINT"] == "ipc:///lute/ipc/s"
    assert payload["host_file_visible"] is False  # $HOME is not the host's
    assert payload["kernel_writable"] is False  # the kernel is bound read-only
    assert payload["python"] != sys.executable  # the image's own Python
    assert payload["cwd"] == str(work_dir)
    assert (work_dir / "probe.txt").read_text() == "written inside\n"  # work_dir is bound read-write
    _no_leftovers(env)


def test_values_that_look_like_shell_commands_arrive_literally_and_run_nothing(
    smoke_sif: Dict[str, Any], make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    # Without --no-eval, apptainer sources --env values in a shell inside the container: $(…) would run.
    evil = {
        "LUTE_SUBST": f"$(touch {work_dir}/pwned)",
        "LUTE_TICKS": f"`touch {work_dir}/pwned-too`",
        "LUTE_HOME": "$HOME",
    }
    cfg = make_config({"ProbeEnvironment": {}})
    result = run_cli("run", "ProbeEnvironment", "-c", str(cfg), "--runtime", "apptainer", env={**env, **evil})
    assert result.returncode == 0, result.stdout + result.stderr
    inside = json.loads(only_row(work_dir, "ProbeEnvironment")["result.payload"])["env"]
    assert {k: inside.get(k) for k in evil} == evil
    assert sorted(p.name for p in work_dir.glob("pwned*")) == []
    _no_leftovers(env)


def test_a_binary_task_runs_inside_the_image(
    smoke_sif: Dict[str, Any], make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    cfg = make_config({"TestBinary": {"executable": str(TEST_BIN / "test_threads"), "p_arg1": 2}})
    result = run_cli("run", "TestBinary", "-c", str(cfg), "--runtime", "apptainer", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 threads finished" in result.stdout
    assert only_row(work_dir, "TestBinary")["prov.image"] == "smoke"


def test_timeout_kills_everything_inside_the_container(
    smoke_sif: Dict[str, Any], make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    cfg = make_config({"FaultSleep": {"seconds": 60, "spawn_child": True}}, task_timeout=3)
    result = run_cli("run", "FaultSleep", "-c", str(cfg), "--runtime", "apptainer", env=env)
    assert result.returncode == 1 and "TIMEDOUT" in result.stdout, result.stdout + result.stderr
    assert only_row(work_dir, "FaultSleep")["result.task_status"] == "TIMEDOUT"
    _no_leftovers(env)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_kernel_cancels_the_container(
    smoke_sif: Dict[str, Any], make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str], signum: int
) -> None:
    cfg = make_config({"FaultSleep": {"seconds": 60, "spawn_child": True}})
    with LiveRun("run", "FaultSleep", "-c", str(cfg), "--runtime", "apptainer", env=env) as run:
        run.wait_for("sleeping", timeout=60)
        assert processes_marked(_marker(env)), "the container's processes should be visible while it runs"
        run.proc.send_signal(signum)
        code, out, _ = run.finish()
    assert code == 1 and "CANCELLED" in out
    assert only_row(work_dir, "FaultSleep")["result.task_status"] == "CANCELLED"
    _no_leftovers(env)


def test_a_missing_image_is_a_clear_input_error(
    make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str], tmp_path: Path
) -> None:
    env = dict(env, LUTE_IMAGE_CACHE=str(tmp_path / "empty-cache"))
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "local.yaml").write_text(f"images:\n  images_dir: {tmp_path / 'no-images'}\n")
    env["LUTE_SITES_DIR"] = str(sites)
    cfg = make_config({"Test": {"compound_var": {"int_var": 1}}})
    result = run_cli("run", "Test", "-c", str(cfg), "--runtime", "apptainer", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "just build-image smoke" in result.stderr
    assert not (work_dir / "lute.db").exists()


def test_explain_prints_the_exact_apptainer_argv(
    smoke_sif: Dict[str, Any], make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    cfg = make_config({"Test": {"compound_var": {"int_var": 1}}})
    result = run_cli("explain", "Test", "-c", str(cfg), "--runtime", "apptainer", "--json", env=env)
    assert result.returncode == 0, result.stderr
    argv = json.loads(result.stdout)["argv"]
    assert argv[:6] == ["apptainer", "exec", "--no-eval", "--containall", "--cleanenv", "--no-home"]
    binds = [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"]
    assert any(b.endswith(":/lute/ipc") for b in binds)
    assert f"{REPO / 'lute_kernel'}:{REPO / 'lute_kernel'}:ro" in binds
    assert str(work_dir) in binds
    envs = [argv[i + 1] for i, a in enumerate(argv) if a == "--env"]
    assert "PYTHONNOUSERSITE=1" in envs and not any(e.startswith("HIDDEN_HOST_VAR=") for e in envs)
    assert argv[-4:] == [smoke_sif["runnable"], "python3", "-m", "lute_kernel.worker"]
    assert not any(a.startswith("LUTE_IPC_TOKEN") for a in argv)  # the secret never goes in argv
    assert run_dirs(Path(env["TMPDIR"])) == [] and not os.path.exists(work_dir / "lute.db")
