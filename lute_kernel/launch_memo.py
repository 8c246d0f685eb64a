"""What a ``run`` command launched last time, so the same command can start its container before it is validated.

Owns the launch memo: for one command (its command line, working folder, environment, user, kernel
version) the exact launch its last run made — argv, environment, cwd,
run-directory root, socket address, the worker's message limit — with the run directory's path
replaced by a marker (each run has its own), and its config file's path and stamp. :mod:`lute_kernel.early_launch`
starts that launch again at once when the config file's stamp still holds, and keeps it only when
the validated plan of the new run is the very same launch. A memo is a guess, never an input: nothing in it is trusted.

Kept in ``$XDG_CACHE_HOME/lute-kernel/launches/`` (0700; entries 0600: argv carries the Task's
allowlisted environment), at most `MAX_ENTRIES` (least recently used go first). Only launches an
early start can repeat are kept: a worker spawned by exec (not forked), over a unix socket, on this
node or as a step of the Slurm allocation the command runs in.
Stdlib only: it runs before the kernel's heavy imports.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence

FORMAT = 2
MAX_ENTRIES = 64
RUN_DIR_MARK = "\0run-dir\0"
"""Stands for the run directory in a kept launch: a NUL is in no argv or environment, so it matches nothing else."""
VOLATILE_ENV = frozenset({"OLDPWD", "_"})
"""Variables a shell changes between commands without changing what runs; not in the digest."""
_DISABLE = "LUTE_NO_EARLY_START"


def enabled(env: Mapping[str, str]) -> bool:
    """False when ``LUTE_NO_EARLY_START`` is set (to anything but empty or 0)."""
    return env.get(_DISABLE) in (None, "", "0")


def command_key(argv: Sequence[str], cwd: str, env: Mapping[str, str]) -> str:
    """The memo's name for one command: its command line, folder and environment, its user, the kernel version.

    The command line as typed, not parsed: the early start looks its launch up before argparse is
    imported. The environment is part of the name, not a check: two shells (or a warm kernel and a
    cold one) running the same command keep a launch each.
    """
    from lute_kernel import __version__

    text = json.dumps([FORMAT, __version__, os.getuid(), cwd, list(argv), env_digest(env)])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def env_digest(env: Mapping[str, str]) -> str:
    """A digest of the environment (without `VOLATILE_ENV`): a launch kept under another one is not tried."""
    items = sorted((k, v) for k, v in env.items() if k not in VOLATILE_ENV)
    return hashlib.sha256(json.dumps(items).encode("utf-8", "surrogatepass")).hexdigest()


def file_stamp(path: str) -> Optional[Sequence[int]]:
    """The file's size and mtime (ns), or None when it cannot be read."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_size, info.st_mtime_ns]


def _path(key: str) -> str:
    from lute_kernel.user_cache import cache_root

    return os.path.join(cache_root(), "launches", f"{key}.json")


def _marked(value: str, run_dir: str) -> str:
    return value.replace(run_dir, RUN_DIR_MARK)


def _unmarked(value: str, run_dir: str) -> str:
    return value.replace(RUN_DIR_MARK, run_dir)


def launch_record(
    *,
    launcher: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str,
    run_dir: str,
    ipc_endpoint: str,
    prefix: str,
    private_dirs: Sequence[str],
    max_bytes: int,
) -> Dict[str, Any]:
    """The launch as the memo keeps it: every string with the run directory replaced by `RUN_DIR_MARK`."""
    return {
        "launcher": launcher,
        "argv": [_marked(a, run_dir) for a in argv],
        "env": {k: _marked(v, run_dir) for k, v in env.items()},
        "cwd": _marked(cwd, run_dir),
        "run_root": os.path.dirname(run_dir),
        "ipc_endpoint": _marked(ipc_endpoint, run_dir),
        "prefix": prefix,
        "private_dirs": list(private_dirs),
        "max_bytes": max_bytes,
    }


def for_run_dir(record: Mapping[str, Any], run_dir: str) -> Dict[str, Any]:
    """The kept launch made concrete for ``run_dir``: argv, env, cwd and socket address name it."""
    return {
        **record,
        "argv": [_unmarked(a, run_dir) for a in record["argv"]],
        "env": {k: _unmarked(v, run_dir) for k, v in record["env"].items()},
        "cwd": _unmarked(record["cwd"], run_dir),
        "ipc_endpoint": _unmarked(record["ipc_endpoint"], run_dir),
    }


def _valid(record: Any) -> bool:
    """True when ``record`` has the shape `launch_record` makes (a damaged or foreign file is a miss)."""
    if not isinstance(record, dict):
        return False
    strings = ("launcher", "cwd", "run_root", "ipc_endpoint", "prefix")
    return (
        all(isinstance(record.get(name), str) for name in strings)
        and isinstance(record.get("argv"), list)
        and bool(record["argv"])
        and all(isinstance(a, str) for a in record["argv"])
        and isinstance(record.get("env"), dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in record["env"].items())
        and isinstance(record.get("private_dirs"), list)
        and all(isinstance(d, str) and d and "/" not in d and d not in (".", "..") for d in record["private_dirs"])
        and type(record.get("max_bytes")) is int
        and record["max_bytes"] > 0
        and os.path.isabs(record["run_root"])
    )


def _private(info: os.stat_result) -> bool:
    """True when the file or folder is this user's and nobody else may write it."""
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def recall(key: str) -> Optional[Dict[str, Any]]:
    """The launch kept for this command, when its config file is as it was; else None."""
    path = _path(key)
    try:
        with open(path, encoding="utf-8") as handle:
            if not (_private(os.fstat(handle.fileno())) and _private(os.stat(os.path.dirname(path)))):
                return None  # what it spawns is this user's to decide: never a file someone else could write
            kept = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("format") != FORMAT or not _valid(kept.get("launch")):
        return None
    config = kept.get("config")
    if not isinstance(config, str) or kept.get("config_stamp") != file_stamp(config):
        return None
    try:
        os.utime(path)  # recently used: kept longest
    except OSError:
        pass
    launch: Dict[str, Any] = kept["launch"]
    return launch


def remember(key: str, config: str, launch: Mapping[str, Any]) -> None:
    """Keep ``launch`` (a `launch_record`) for the next run of this command; silently not when it cannot."""
    config = os.path.abspath(config)
    text = json.dumps(
        {"format": FORMAT, "config": config, "config_stamp": file_stamp(config), "launch": launch},
        separators=(",", ":"),
    )
    path = _path(key)
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return  # the same launch as last time: nothing to write
    except OSError:
        pass
    from lute_kernel.user_cache import evict, write_entry

    try:
        write_entry(path, text, prefix=".launch-")
        evict(os.path.dirname(path), MAX_ENTRIES)
    except OSError:
        return


def forget(key: str) -> None:
    """Drop the launch kept for this command (it did not match: the next run starts as usual, then keeps its own)."""
    try:
        os.unlink(_path(key))
    except OSError:
        pass
