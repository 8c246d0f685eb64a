"""The warm kernel (``lute-kernel serve``) for real: a ``run`` through it is the same command as a cold one.

Each test starts its own server with ``serve --detach`` in a private TMPDIR (so the server's
directory, and every run directory, are the test's own) and runs the installed ``lute-kernel``
script, as users do (the server serves commands of the same interpreter and Python path).
Compared with the same command run cold (``LUTE_WARM=0``, or no server listening): exit codes,
output, rows; then signals, a command killed mid-run, a server whose code changed, concurrent
commands, stop and status.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest
from conftest import REPO
from e2e import assert_no_leftovers, isolated_env, rows, wait_gone

pytestmark = [pytest.mark.integration]

SCRIPT = Path(sys.executable).with_name("lute-kernel")
HEADER = '{"title": "warm", "experiment": "xpptut15", "run": 7, "date": "2026/12/01", "lute_version": 0.1, '


def _config(work_dir: Path, **test: object) -> Path:
    params = {"float_var": 0.01, "str_var": "warm", "compound_var": {"int_var": 3, "dict_var": {"a": "b"}}}
    params.update({"throw_error": False, "sleep_secs": 0, **test})
    path = work_dir / "config.yaml"
    work_dir.mkdir(parents=True, exist_ok=True)
    header = HEADER + f'"task_timeout": 120, "work_dir": "{work_dir}"' + "}"
    path.write_text(f"%YAML 1.3\n---\n{header}\n...\n---\n{json.dumps({'Test': params})}\n...\n")
    return path


def _lute(*args: str, env: Dict[str, str], cwd: Path = REPO, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def _status(env: Dict[str, str]) -> Dict[str, object]:
    done = _lute("serve", "--status", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    status: Dict[str, object] = json.loads(done.stdout)
    return status


def _envs(cli_env: Dict[str, str], tmp_path: Path, **extra: str) -> Dict[str, Dict[str, str]]:
    """The server's and its commands' environments: one private XDG_RUNTIME_DIR (the server's directory),
    TMPDIRs of their own (so every process a run starts is marked by the commands' TMPDIR, never the server)."""
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700, exist_ok=True)
    server = isolated_env(cli_env, tmp_path / "server-tmp", XDG_RUNTIME_DIR=str(xdg), **extra)
    command = isolated_env(cli_env, tmp_path / "tmp", XDG_RUNTIME_DIR=str(xdg), **extra)
    for env in (server, command):
        env.pop("LUTE_WARM", None)
    return {"server": server, "command": command}


def _start(server_env: Dict[str, str]) -> int:
    started = _lute("serve", "--detach", "--idle-timeout", "300", env=server_env)
    assert started.returncode == 0, started.stdout + started.stderr
    return int(_status(server_env)["pid"])  # type: ignore[call-overload]


@pytest.fixture
def warm(cli_env: Dict[str, str], tmp_path: Path) -> Iterator[Dict[str, str]]:
    """A serving warm kernel; yields the environment its commands use (stopped and gone afterwards)."""
    assert SCRIPT.exists(), f"{SCRIPT}: the tests need the installed lute-kernel script"
    envs = _envs(cli_env, tmp_path)
    pid = _start(envs["server"])
    yield envs["command"]
    _lute("serve", "--stop", env=envs["server"])
    assert wait_gone(pid, 30), "the warm kernel did not stop"


def _normal(text: str) -> str:
    """Output with what differs between two runs of one command (times, row ids, paths of runs) blanked."""
    text = re.sub(r"\d+\.\d+ s\b", "T s", text)
    text = re.sub(r"row \d+", "row N", text)
    text = re.sub(r"lute-[\w.-]+", "lute-RUN", text)
    return "\n".join(line for line in text.splitlines() if not line.startswith(("lute-kernel profile", "  ")))


def _cold(warm: Dict[str, str], tmp_path: Path) -> Dict[str, str]:
    """The commands' environment where no server listens (so even the Task's LUTE_* variables are the same)."""
    elsewhere = tmp_path / "xdg-cold"
    elsewhere.mkdir(mode=0o700, exist_ok=True)
    return {**warm, "XDG_RUNTIME_DIR": str(elsewhere)}


def _served(env: Dict[str, str]) -> int:
    return int(_status(env)["served"])  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "case",
    [
        {},  # completes
        {"throw_error": True},  # the Task fails: exit 1
        {"float_var": "not a number"},  # bad input: exit 2 before launch
    ],
    ids=["completes", "task-fails", "bad-input"],
)
def test_a_warm_run_is_the_cold_run(warm: Dict[str, str], tmp_path: Path, case: Dict[str, object]) -> None:
    cold_dir, warm_dir = tmp_path / "cold", tmp_path / "warm"
    cold = _lute("run", "Test", "-c", str(_config(cold_dir, **case)), env={**warm, "LUTE_WARM": "0"})
    before = _served(warm)
    hot = _lute("run", "Test", "-c", str(_config(warm_dir, **case)), env=warm)
    assert _served(warm) == before + 1, "the command did not go through the warm kernel"
    assert hot.returncode == cold.returncode
    assert _normal(hot.stdout.replace(str(warm_dir), "W")) == _normal(cold.stdout.replace(str(cold_dir), "W"))
    assert _normal(hot.stderr.replace(str(warm_dir), "W")) == _normal(cold.stderr.replace(str(cold_dir), "W"))
    if (cold_dir / "lute.db").exists():
        cold_rows, warm_rows = rows(cold_dir, "Test"), rows(warm_dir, "Test")
        assert [r["valid_flag"] for r in warm_rows] == [r["valid_flag"] for r in cold_rows]
        assert warm_rows[0]["float_var"] == cold_rows[0]["float_var"]
    else:
        assert not (warm_dir / "lute.db").exists()
    assert_no_leftovers(Path(warm["TMPDIR"]))


@pytest.mark.parametrize(
    "command",
    [["validate"], ["explain", "Test"], ["validate", "--json"], ["explain", "Nope"]],
    ids=["validate", "explain", "validate-json", "explain-unknown"],
)
def test_validate_and_explain_read_the_same_warm_or_cold(
    warm: Dict[str, str], tmp_path: Path, command: List[str]
) -> None:
    config = str(_config(tmp_path / "work"))
    cold = _lute(*command, "-c", config, env=_cold(warm, tmp_path))
    hot = _lute(*command, "-c", config, env=warm)
    assert (hot.returncode, hot.stdout, hot.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    assert _served(warm) == 1


def test_the_command_s_environment_directory_and_profile_reach_the_run(warm: Dict[str, str], tmp_path: Path) -> None:
    work = tmp_path / "work"
    _config(work)
    done = _lute("run", "Test", "-c", "config.yaml", env={**warm, "LUTE_PROFILE": "1"}, cwd=work)  # relative path
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lute-kernel profile:" in done.stderr and "host start-up" in done.stderr
    assert _served(warm) == 1
    assert [r["valid_flag"] for r in rows(work, "Test")] == [1]


@pytest.mark.parametrize(
    ("signum", "ignored"),
    [
        (signal.SIGINT, ()),
        (signal.SIGTERM, ()),
        (signal.SIGHUP, ()),
        (signal.SIGHUP, (signal.SIGHUP, signal.SIGINT)),  # `nohup … &` in a script: ignored from the start
    ],
    ids=["SIGINT", "SIGTERM", "SIGHUP", "SIGHUP-ignored-at-start"],
)
def test_a_signal_to_the_command_cancels_the_run_as_cold(
    warm: Dict[str, str], tmp_path: Path, signum: int, ignored: Tuple[int, ...]
) -> None:
    outcomes = []
    for name, env in (("cold", {**warm, "LUTE_WARM": "0"}), ("warm", warm)):
        work = tmp_path / name
        proc = _start_run(work, env, text=True, ignored=ignored)
        try:
            _wait_for_running_row(work)
            proc.send_signal(signum)
            out, _err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        (row,) = rows(work, "Test")
        outcomes.append((proc.returncode, out.strip().splitlines()[-1].split(" in ")[0], row["result.task_status"]))
        assert_no_leftovers(Path(warm["TMPDIR"]))
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][2] == "CANCELLED"
    assert _served(warm) == 1


def test_a_command_killed_mid_run_cancels_its_run(warm: Dict[str, str], tmp_path: Path) -> None:
    work = tmp_path / "work"
    proc = _start_run(work, warm, output=subprocess.DEVNULL)
    _wait_for_running_row(work)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 60
    while _status(warm)["running"] and time.monotonic() < deadline:
        time.sleep(0.1)  # polling the server's own count: what the test waits for is another process
    assert _status(warm)["running"] == 0
    (row,) = rows(work, "Test")
    assert row["result.task_status"] == "CANCELLED" and row["valid_flag"] == 0
    assert "SIGHUP" in row["result.summary"]
    assert_no_leftovers(Path(warm["TMPDIR"]))


def test_a_child_that_ends_without_saying_its_code_is_reported_as_a_shell_would(
    warm: Dict[str, str], tmp_path: Path
) -> None:
    """The server ends a command on its child's last word; a child killed outright says none: its status counts."""
    server = int(_status(warm)["pid"])  # type: ignore[call-overload]
    proc = _start_run(tmp_path / "work", warm, output=subprocess.DEVNULL)
    try:
        _wait_for_running_row(tmp_path / "work")
        (child,) = [pid for pid in _children(server)]
        os.kill(child, signal.SIGKILL)
        assert proc.wait(timeout=60) == 128 + signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _status(warm)["serving"] is True
    again = _lute("run", "Test", "-c", str(_config(tmp_path / "again")), env=warm)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _served(warm) == 2


def _children(pid: int) -> List[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def test_lute_warm_auto_starts_a_server_for_the_next_commands(cli_env: Dict[str, str], tmp_path: Path) -> None:
    env = _envs(cli_env, tmp_path)["command"]
    env["LUTE_WARM"] = "auto"
    first = _lute("run", "Test", "-c", str(_config(tmp_path / "first")), env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    deadline = time.monotonic() + 60
    while _lute("serve", "--status", env=env).returncode != 0:  # started by the first command, after it
        assert time.monotonic() < deadline, "LUTE_WARM=auto started no warm kernel"
    pid = int(_status(env)["pid"])  # type: ignore[call-overload]
    try:
        second = _lute("run", "Test", "-c", str(_config(tmp_path / "second")), env=env)
        assert second.returncode == 0 and _served(env) == 1
    finally:
        _lute("serve", "--stop", env=env)
    assert wait_gone(pid, 30)


def test_concurrent_commands_each_get_their_own_run(warm: Dict[str, str], tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [str(SCRIPT), "run", "Test", "-c", str(_config(tmp_path / f"w{i}", sleep_secs=1))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=warm,
            cwd=REPO,
        )
        for i in range(3)
    ]
    codes = [p.wait(timeout=120) for p in procs]
    for proc in procs:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert codes == [0, 0, 0]
    assert _served(warm) == 3
    for i in range(3):
        assert [r["valid_flag"] for r in rows(tmp_path / f"w{i}", "Test")] == [1]


def test_a_server_whose_code_changed_runs_the_command_cold_and_replaces_itself(
    cli_env: Dict[str, str], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    probe = site / "sitecustomize.py"  # imported by every interpreter on this path: the server's code
    probe.write_text("# part of the server's code\n")
    envs = _envs(cli_env, tmp_path, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))
    pid = _start(envs["server"])
    try:
        stat = probe.stat()
        os.utime(probe, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**10))  # changed, and settled
        done = _lute("run", "Test", "-c", str(_config(tmp_path / "work")), env=envs["command"])
        assert done.returncode == 0, done.stdout + done.stderr
        assert [r["valid_flag"] for r in rows(tmp_path / "work", "Test")] == [1]
        assert wait_gone(pid, 30), "a server whose code changed must stop"
        deadline = time.monotonic() + 60
        while _lute("serve", "--status", env=envs["command"]).returncode != 0:  # its replacement starting
            assert time.monotonic() < deadline, "a detached server whose code changed must start a new one"
        replacement = _status(envs["command"])
        assert replacement["pid"] != pid and replacement["served"] == 0
        again = _lute("run", "Test", "-c", str(_config(tmp_path / "again")), env=envs["command"])
        assert again.returncode == 0 and _served(envs["command"]) == 1
    finally:
        _lute("serve", "--stop", env=envs["server"])
    assert wait_gone(int(replacement["pid"]), 30)  # type: ignore[call-overload]


def test_one_server_per_address_and_garbage_never_ends_it(warm: Dict[str, str]) -> None:
    again = _lute("serve", "--detach", env=warm)
    assert again.returncode == 2 and "already serves" in again.stderr
    import socket as socketlib

    from lute_kernel.warm.address import bind_or_connect

    where = Path(str(_status(warm)["socket"]))
    replies: List[Dict[str, object]] = []
    for packet in [b"", b"\xff\xfe", b"[]", b'{"op": "run"}', b'{"op": "signal", "signum": 9}', b"{" * 100000]:
        with socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_SEQPACKET) as sock:
            bind_or_connect(sock, str(where))
            sock.send(packet)
            if packet:
                replies.append(json.loads(sock.recv(1 << 20)))
    assert [r["op"] for r in replies] == ["refused"] * 5
    assert _status(warm)["serving"] is True


IGNORING = (
    "import os, signal, sys\n"
    "for s in sys.argv[1].split(','):\n"
    "    signal.signal(int(s), signal.SIG_IGN)\n"
    "os.execv(sys.argv[2], sys.argv[2:])"
)
"""Exec the command with the signals of ``argv[1]`` ignored, as a shell starts a background job or nohup a command."""


def _start_run(
    work: Path,
    env: Dict[str, str],
    output: int = subprocess.PIPE,
    text: bool = False,
    ignored: Tuple[int, ...] = (),
) -> subprocess.Popen:  # type: ignore[type-arg]
    """Start ``run Test`` (sleeping a minute) in the background (with ``ignored`` signals ignored from its start)."""
    command = [str(SCRIPT), "run", "Test", "-c", str(_config(work, sleep_secs=60))]
    if ignored:
        command = [sys.executable, "-c", IGNORING, ",".join(str(int(s)) for s in ignored), *command]
    return subprocess.Popen(
        command,
        stdout=output,
        stderr=output,
        text=text,
        env=env,
        cwd=REPO,
    )


def _wait_for_running_row(work: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # the row is the kernel's own sign that the Task runs
        try:
            if rows(work, "Test"):
                return
        except Exception:  # the DB or its table does not exist yet
            pass
        time.sleep(0.05)
    raise AssertionError("the run never wrote its RUNNING row")
