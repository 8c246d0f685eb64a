"""Per-run directories (the socket lives there): made private, marked with their owner, cleaned up.

Owns creating a run directory (mode 0700) with an ``owner`` file naming the host, the kernel's
pid and its start time, and removing the run directories of kernels that died (SIGKILL, a lost
node) without cleaning up: the next run on the same host sweeps them. Never removes a directory
whose kernel still runs, one of another host, or one it cannot attribute.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
from pathlib import Path
from typing import Optional, Tuple

from lute_kernel.procinfo import is_alive, process_start_time

RUN_DIR_PREFIX = "lute-"
OWNER_FILE = "owner"
_RUN_DIR_NAME = re.compile(r"lute-[0-9a-f]{12}\Z")
"""What :func:`run_dir_name` makes. The sweep looks at these only: a shared ``/tmp`` holds many other
``lute-*`` entries (logs, test folders), and reading each one's owner file cost every run milliseconds."""


def run_dir_name() -> str:
    """Return a new run directory name: ``lute-`` and 12 random hex digits."""
    return f"{RUN_DIR_PREFIX}{secrets.token_hex(6)}"


def _owner_line() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()} {pid} {process_start_time(pid) or 0}\n"


def make_run_dir(path: Path) -> Path:
    """Create ``path`` (0700, it must not exist) and record who owns it."""
    path.mkdir(mode=0o700)
    (path / OWNER_FILE).write_text(_owner_line())
    return path


def _read_owner(path: Path) -> Optional[Tuple[str, int, int]]:
    try:
        host, pid, start = (path / OWNER_FILE).read_text().split()
        return host, int(pid), int(start)
    except (OSError, ValueError):
        return None


def clean_stale_run_dirs(root: Path) -> int:
    """Remove run directories in ``root`` left by dead kernels of this host and user; return how many."""
    removed = 0
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    host, uid = socket.gethostname(), os.getuid()
    for entry in entries:
        if not _RUN_DIR_NAME.match(entry.name):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != uid:
                continue
        except OSError:
            continue
        owner = _read_owner(Path(entry.path))
        if owner is None or owner[0] != host or is_alive(owner[1], owner[2] or None):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed += 1
    return removed
