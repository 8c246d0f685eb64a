"""R5 IPC strangers: real kernel runs while a stranger attacks the run's socket, over unix and TCP.

Each case is one ``lute-kernel run IpcStrangerTarget`` (local runtime, fork start): the Task tells
the test its endpoint, keeps sending log ticks, and a forked stranger (this user, or uid 65534 when
the tests run as root) runs one attack from ``ipc_attacks``. Promised for every case: the run
COMPLETES with its own result (none of the stranger's), every tick arrives, the kernel's peak
memory grows by less than ``MEMORY_BOUND``, no traceback, no run directory left, the row recorded.
The counts go to ``figures.record`` ("R5 IPC strangers").
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from conftest import REPO, write_config
from figures import record
from ipc_attacks import ATTACKS, run_attack

MAX_BYTES = 8 << 20
"""The site's ipc_max_bytes in these runs (frames over it are refused by libzmq, under it read)."""
MEMORY_BOUND = 96 << 20
"""Most the kernel's peak RSS may grow during an attack that pushes up to ~1 GB at it."""
WAIT_S = 120.0
OTHER_UID = 65534
UNIX_OTHER_USER = ["random bytes", "forged result/error/bye", "connection flood"]

CASES: List[Tuple[str, str, str]] = (
    [("unix", "same user", name) for name in ATTACKS]
    + ([("unix", "uid 65534", name) for name in UNIX_OTHER_USER] if os.geteuid() == 0 else [])
    + [("tcp", "uid 65534" if os.geteuid() == 0 else "same user", name) for name in ATTACKS]
)


@dataclass
class Tally:
    tried: int = 0
    ok: int = 0
    failed: List[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    counts = Tally()
    yield counts
    record("R5 IPC strangers", counts.tried, counts.ok, {"failed": counts.failed} if counts.failed else None)


def _kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field_name} for pid {pid}")


def _wait_readable(fd: int, pid_fd: int, what: str) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.register(pid_fd, select.POLLIN)
    ready = dict(poller.poll(int(WAIT_S * 1000)))
    assert fd in ready, f"{what}: not within {WAIT_S:g} s (process ended: {pid_fd in ready})"


def attack_in_child(name: str, endpoint: str, server_key: str, uid: Optional[int]) -> Dict[str, Any]:
    """Fork, drop to ``uid`` (if given), run the attack; return what the child reported."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the stranger
        code = 0
        try:
            os.close(read_end)
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            report = {**run_attack(name, endpoint, server_key, MAX_BYTES), "uid": os.getuid()}
        except BaseException:
            report, code = {"error": traceback.format_exc()}, 1
        os.write(write_end, json.dumps(report).encode())
        os._exit(code)
    os.close(write_end)
    pid_fd = os.pidfd_open(pid)
    try:
        _wait_readable(pid_fd, pid_fd, f"the stranger ({name})")
        os.waitpid(pid, 0)
        with os.fdopen(read_end, "rb") as reader:
            return dict(json.loads(reader.read() or b"{}"))
    finally:
        os.close(pid_fd)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


@pytest.mark.parametrize(("transport", "who", "attack"), CASES, ids=["-".join(c).replace(" ", "_") for c in CASES])
def test_a_stranger_cannot_crash_stall_bloat_or_speak_for_the_task(
    tmp_path: Path, cli_env: Dict[str, str], tally: Tally, transport: str, who: str, attack: str
) -> None:
    tally.tried += 1
    work_dir, tmpdir, sites = tmp_path / "work", tmp_path / "t", tmp_path / "sites"
    for path in (work_dir, tmpdir, sites):
        path.mkdir()
    mpi = "mpi:\n  transport: tcp\n  tcp_host: 127.0.0.1\n" if transport == "tcp" else ""
    (sites / "local.yaml").write_text(f"ipc_max_bytes: {MAX_BYTES}\n{mpi}")
    ready_fifo, go_fifo = tmp_path / "ready", tmp_path / "go"
    os.mkfifo(ready_fifo)
    os.mkfifo(go_fifo)
    header = {"title": "r5", "experiment": "xpptut15", "run": 1, "date": "2026/12/01", "lute_version": 0.1}
    header.update(task_timeout=WAIT_S, work_dir=str(work_dir))
    section = {"IpcStrangerTarget": {"ready_fifo": str(ready_fifo), "go_fifo": str(go_fifo)}}
    config = write_config(tmp_path / "config.yaml", header, section)
    env = dict(cli_env, LUTE_SITES_DIR=str(sites), TMPDIR=str(tmpdir), COLUMNS="250")
    ready = os.open(ready_fifo, os.O_RDONLY | os.O_NONBLOCK)  # before the Task opens it to write
    with open(tmp_path / "out", "w+") as out, open(tmp_path / "err", "w+") as err:
        kernel = subprocess.Popen(
            [sys.executable, "-m", "lute_kernel.cli", "run", "IpcStrangerTarget", "-c", str(config)],
            stdout=out,
            stderr=err,
            env=env,
            cwd=REPO,
        )
        kernel_fd = os.pidfd_open(kernel.pid)
        try:
            _wait_readable(ready, kernel_fd, "the Task's endpoint")
            info = json.loads(_read_all(ready, kernel_fd))
            baseline = _kib(kernel.pid, "VmRSS")
            ticks_before = _ticks(Path(out.name))
            report = attack_in_child(
                attack, info["endpoint"], info["server_key"], OTHER_UID if "65534" in who else None
            )
            growth = _kib(kernel.pid, "VmHWM") - baseline
            ticks_during = _ticks(Path(out.name)) - ticks_before
            go = os.open(go_fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.write(go, b"go")
            os.close(go)
            code = kernel.wait(WAIT_S)
        finally:
            os.close(kernel_fd)
            os.close(ready)
            if kernel.poll() is None:  # a failed case: SIGTERM first, so the kernel tears the Task down
                kernel.terminate()
                try:
                    kernel.wait(30)
                except subprocess.TimeoutExpired:
                    kernel.kill()
                    kernel.wait()
        stdout, stderr = Path(out.name).read_text(), Path(err.name).read_text()
    where = (
        f"{transport}/{who}/{attack}: report {report}, growth {growth >> 20} MiB\n{stdout[-2000:]}\n{stderr[-2000:]}"
    )
    assert "error" not in report, where
    assert report["uid"] == (OTHER_UID if "65534" in who else os.getuid()), where
    assert report["connects"] is not (transport == "unix" and "65534" in who), where  # 0700 dir, 0600 socket
    assert code == 0, where
    row = _only_row(work_dir)
    summary = re.search(r"— ticks: (\d+)$", stdout.strip().splitlines()[-1])
    assert summary is not None, where
    assert row["result.task_status"] == "COMPLETED" and row["result.summary"] == f"ticks: {summary.group(1)}", where
    assert _ticks_text(stdout) == int(summary.group(1)), where  # every tick the Task sent arrived
    assert "forged" not in stdout + stderr + json.dumps(row) and "Traceback" not in stderr, where
    assert growth < MEMORY_BOUND, where
    assert list(tmpdir.glob("lute-*")) == [], where
    print(f"{transport}/{who}/{attack}: pushed {report['pushed']}, {ticks_during} ticks during, +{growth >> 20} MiB")
    tally.ok += 1


def _read_all(fd: int, kernel_fd: int) -> bytes:
    data = b""
    while True:
        _wait_readable(fd, kernel_fd, "the rest of the Task's endpoint")
        chunk = os.read(fd, 65536)
        if not chunk:  # the Task closed its end
            return data
        data += chunk


TICK = re.compile(r"^INFO\s+tick \d+$", re.MULTILINE)


def _ticks_text(text: str) -> int:
    return len(TICK.findall(text))


def _ticks(path: Path) -> int:
    return _ticks_text(path.read_text())


def _only_row(work_dir: Path) -> Dict[str, Any]:
    con = sqlite3.connect(work_dir / "lute.db")
    try:
        con.row_factory = sqlite3.Row
        rows = [dict(r) for r in con.execute('SELECT * FROM "IpcStrangerTarget"')]
    finally:
        con.close()
    assert len(rows) == 1, rows
    return rows[0]
