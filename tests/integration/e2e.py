"""Helpers for the end-to-end tests: a private TMPDIR, DB look-ups, leftovers checks, live CLI output.

Every end-to-end test runs ``lute-kernel`` as a subprocess with ``TMPDIR`` set to an empty folder of
its own. The executor makes its run directory (and the socket in it) there, and the Task's process
inherits ``TMPDIR`` (it is on the env allowlist), so the folder's path marks every process a run
started: after the run, no such process and no ``lute-*`` folder may be left.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from conftest import REPO

TEST_BIN = REPO / "tasks" / "bin"


@pytest.fixture(scope="session")
def smoke_sif() -> Dict[str, Any]:
    """Build (or find) the smoke image; return its manifest facts (import it into a test module to use it)."""
    built = subprocess.run(
        [sys.executable, "-m", "lute_kernel.cli", "images", "build", "smoke"], cwd=REPO, text=True, capture_output=True
    )
    assert built.returncode == 0, built.stdout + built.stderr
    from lute_kernel.images import find_image
    from lute_kernel.sites import load_site

    image = find_image("smoke", load_site())
    return {"sif": str(image.sif), "runnable": str(image.runnable), "sha256": image.sha256}


def isolated_env(cli_env: Dict[str, str], tmpdir: Path, **extra: str) -> Dict[str, str]:
    """Return ``cli_env`` with TMPDIR set to ``tmpdir`` (created empty) and wide rich tables."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    env = dict(cli_env)
    env.update(TMPDIR=str(tmpdir), COLUMNS="250", **extra)
    return env


def run_dirs(tmpdir: Path) -> List[str]:
    """Return the executor run directories (``lute-*``) present in ``tmpdir``."""
    return sorted(p.name for p in tmpdir.glob("lute-*"))


def processes_marked(marker: str) -> List[int]:
    """Return the pids of live (non-zombie) processes whose environment contains ``marker``."""
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes() and _alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    """Return True once ``pid`` is gone (or a zombie), False if it is still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def assert_no_leftovers(tmpdir: Path) -> None:
    """Assert the run left no run directory (socket) and no process behind."""
    assert run_dirs(tmpdir) == [], f"run directories left in {tmpdir}"
    leftovers = [pid for pid in processes_marked(f"TMPDIR={tmpdir}\0") if not wait_gone(pid)]
    assert leftovers == [], f"processes left running: {leftovers}"


def db_file(work_dir: Path) -> Path:
    """Return the run database of ``work_dir``."""
    return work_dir / "lute.db"


def tables(work_dir: Path) -> List[str]:
    """Return the table names of ``work_dir``'s lute.db."""
    with sqlite3.connect(db_file(work_dir)) as con:
        return [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]


def rows(work_dir: Path, table: str) -> List[Dict[str, Any]]:
    """Return every row of ``table`` as ``{column: value}``, oldest first."""
    con = sqlite3.connect(db_file(work_dir))
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(f'SELECT * FROM "{table}" ORDER BY id')]
    finally:
        con.close()


def row_counts(work_dir: Path) -> Dict[str, int]:
    """Return ``{table: row count}`` for every table, or ``{}`` when there is no database."""
    if not db_file(work_dir).exists():
        return {}
    return {name: len(rows(work_dir, name)) for name in tables(work_dir) if not name.startswith("sqlite_")}


def only_row(work_dir: Path, table: str) -> Dict[str, Any]:
    """Return the single row of ``table``."""
    found = rows(work_dir, table)
    assert len(found) == 1, f"{table}: expected one row, found {len(found)}"
    return found[0]


def argv_of(row: Dict[str, Any]) -> List[str]:
    """Return the recorded argv of a row."""
    value = json.loads(row["prov.argv"])
    assert isinstance(value, list)
    return value


def last_line(text: str) -> str:
    """Return the last non-empty line of ``text``."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class LiveRun:
    """``lute-kernel ARGS`` started in the background; its stdout lines are collected as they come."""

    def __init__(self, *args: str, env: Dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lute_kernel.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        self.lines: List[Tuple[float, bool, str]] = []
        """(arrival time, kernel still running, line) for each stdout line."""
        self._stderr: List[str] = []
        self._queue: queue.Queue[Optional[str]] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def __enter__(self) -> LiveRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.proc.poll() is None:  # the test failed half-way: do not leave the kernel running
            self.proc.kill()
            self.proc.wait()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), self.proc.poll() is None, line.rstrip("\n")))
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self._stderr.extend(self.proc.stderr)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """Return the first new stdout line containing ``text``; fail if the output ends first."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {text!r} within {timeout} s: {self.stdout()}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"output ended without {text!r}: {self.stdout()}")
            if text in line:
                return line

    def finish(self, timeout: float = 60.0) -> Tuple[int, str, str]:
        """Wait for the exit; return (exit code, all stdout, all stderr)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            if os.environ.get("LUTE_TEST_DUMP_HANGS"):  # a sitecustomize that registers faulthandler on SIGUSR1
                os.kill(self.proc.pid, signal.SIGUSR1)  # dumps the kernel's stacks to its stderr, shown below
                time.sleep(1)
            self.proc.kill()
            self.proc.wait()
            for reader in self._readers:
                reader.join(5)
            tail = "\n".join(self.stdout().splitlines()[-40:])
            raise AssertionError(
                f"the command did not exit within {timeout:g} s; its last output:\n{tail}\nstderr:\n"
                + "".join(self._stderr)[-4000:]
            ) from None
        for reader in self._readers:
            reader.join(timeout)
        return self.proc.returncode, self.stdout(), "".join(self._stderr)

    def stdout(self) -> str:
        """Return the stdout collected so far."""
        return "\n".join(line for _, _, line in self.lines)
