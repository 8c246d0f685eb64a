"""Run directories: private, owned, and swept once their kernel is dead — only the kernel's own names."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from lute_kernel.procinfo import process_start_time
from lute_kernel.run_dirs import OWNER_FILE, clean_stale_run_dirs, make_run_dir, run_dir_name


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_names_are_the_prefix_and_twelve_hex_digits() -> None:
    names = {run_dir_name() for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith("lute-") and len(n) == 17 and int(n[5:], 16) >= 0 for n in names)


def test_a_dead_kernels_run_dir_is_swept_and_nothing_else(tmp_path: Path) -> None:
    live = make_run_dir(tmp_path / run_dir_name())
    assert (live.stat().st_mode & 0o777) == 0o700
    assert (live / OWNER_FILE).read_text().split()[:2] == [socket.gethostname(), str(os.getpid())]
    dead_line = f"{socket.gethostname()} {_dead_pid()} {process_start_time(os.getpid()) or 0}\n"
    dead = tmp_path / run_dir_name()
    dead.mkdir(mode=0o700)
    (dead / OWNER_FILE).write_text(dead_line)
    other_host = tmp_path / run_dir_name()
    other_host.mkdir(mode=0o700)
    (other_host / OWNER_FILE).write_text(f"not-{socket.gethostname()} 1 1\n")
    unowned = tmp_path / run_dir_name()  # being made right now: no owner file yet
    unowned.mkdir(mode=0o700)
    not_a_run_dir = tmp_path / "lute-reliability-x1"  # another tool's folder with the same prefix
    not_a_run_dir.mkdir()
    (not_a_run_dir / OWNER_FILE).write_text(dead_line)
    assert clean_stale_run_dirs(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (live, other_host, unowned, not_a_run_dir)
    )
