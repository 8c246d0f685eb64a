"""Per-run directories (the socket lives there): made private, marked with their owner, cleaned up.

Owns creating a run directory (mode 0700) with an ``owner`` file naming the host, the kernel's
pid and its start time, and removing the run directories of kernels that died (SIGKILL, a lost
node) without cleaning up: the next run on the same host sweeps them. Never removes a directory
whose kernel still runs, one of another host, or one it cannot attribute.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Optional, Tuple, TypeVar

if TYPE_CHECKING:  # not at run time: an early start makes its run directory before pathlib is imported
    from pathlib import Path

from lute_kernel.procinfo import is_alive, process_start_time

RUN_DIR_PREFIX = "lute-"
OWNER_FILE = "owner"
_RUN_DIR_NAME = re.compile(r"lute-[0-9a-f]{12}\Z")
"""What :func:`run_dir_name` makes. The sweep looks at these only: a shared ``/tmp`` holds many other
``lute-*`` entries (logs, test folders), and reading each one's owner file cost every run milliseconds."""


def run_dir_name() -> str:
    """Return a new run directory name: ``lute-`` and 12 random hex digits."""
    return f"{RUN_DIR_PREFIX}{os.urandom(6).hex()}"  # not secrets': its import costs an early start ~3 ms


def _host() -> str:
    """This host's name: what ``socket.gethostname()`` returns (uname's nodename), without importing socket."""
    return os.uname().nodename


def _owner_line() -> str:
    pid = os.getpid()
    return f"{_host()} {pid} {process_start_time(pid) or 0}\n"


_PathT = TypeVar("_PathT", str, "Path")


def make_run_dir(path: _PathT) -> _PathT:
    """Create ``path`` (0700, it must not exist), record who owns it, and return it."""
    os.mkdir(path, 0o700)
    with open(os.path.join(path, OWNER_FILE), "w", encoding="utf-8") as owner:
        owner.write(_owner_line())
    return path


def _read_owner(path: str) -> Optional[Tuple[str, int, int]]:
    try:
        with open(os.path.join(path, OWNER_FILE), encoding="utf-8") as owner:
            host, pid, start = owner.read().split()
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
    host, uid = _host(), os.getuid()
    for entry in entries:
        if not _RUN_DIR_NAME.match(entry.name):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != uid:
                continue
        except OSError:
            continue
        owner = _read_owner(entry.path)
        if owner is None or owner[0] != host or is_alive(owner[1], owner[2] or None):
            continue
        import shutil

        shutil.rmtree(entry.path, ignore_errors=True)
        removed += 1
    return removed
