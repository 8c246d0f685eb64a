"""Where a warm kernel listens, and which commands it may serve.

Owns the server's key and paths. A server serves only commands that would import exactly what it
imported and run where it runs: the same user, interpreter (``sys.executable``), import path
(``sys.path``), interpreter flags, credentials (uid, gid, groups), the environment read at
start-up (``PYTHON*``, ``LD_*``, ``LANG``, ``LC_*``) and Slurm job (a server started in one job never runs
another job's Task). Everything lives in one private directory per user — ``$XDG_RUNTIME_DIR/
lute-kernel`` when that is ours, else ``<tmp>/lute-kernel-<uid>`` — which must be owned by the user
and closed to everyone else before a socket in it is trusted. Stdlib only; must stay cheap (a
``run`` computes it before anything else).
"""

from __future__ import annotations

import os
import stat
import sys
import zlib

from lute_kernel.warm.wire import encode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _socket import socket
    from typing import Mapping, Optional, Sequence

WARM_COMMANDS = ("run", "validate", "explain", "rerun")
"""The commands the ``run`` warm kernel serves: the ones a scientist repeats (the rest start cold, as always)."""

WARM_ENV = "LUTE_WARM"
"""``LUTE_WARM=0`` (or off/no/false): a ``run`` never uses a warm kernel, even when one serves."""


class UnsafeDirectory(Exception):
    """The per-user directory exists but is not private to this user."""


class Address:
    """A warm kernel's files (paths as strings): the socket it listens on, its lock, its log."""

    __slots__ = ("directory", "key")

    def __init__(self, directory: str, key: str) -> None:
        self.directory = directory
        self.key = key

    @property
    def socket(self) -> str:
        """The unix socket commands connect to."""
        return os.path.join(self.directory, f"warm-{self.key}.sock")

    @property
    def lock(self) -> str:
        """Held (flock) by the one server of this address."""
        return os.path.join(self.directory, f"warm-{self.key}.lock")

    @property
    def log(self) -> str:
        """Where a detached server writes."""
        return os.path.join(self.directory, f"warm-{self.key}.log")


_STARTUP_ENV = ("PYTHON", "LD_", "LANG", "LC_")
RUN = "run"
"""The warm kernel of ``run``, ``validate``, ``explain`` and ``rerun``."""
FLOWS = "flows"
"""The warm kernel of ``flow run`` (``serve --flows``): Prefect imported too, in a server of its own
(in the ``run`` server it would double each command's fork and freshness check, ~9 ms)."""
_PREFECT_IMPORT_ENV = ("PREFECT_", "DO_NOT_TRACK", "HOME")
"""What ``import prefect`` reads (its settings, profiles and home): a flows server serves only
commands whose values are the ones it imported Prefect with."""


def server_key(env: Optional[Mapping[str, str]] = None, kind: str = RUN) -> str:
    """Return the key of the ``kind`` server this process could use (or would be)."""
    env = os.environ if env is None else env
    identity = {
        "user": [os.getuid(), os.getgid(), sorted(os.getgroups())],  # the child keeps the server's credentials
        "executable": sys.executable,
        "flags": [repr(sys.flags), sorted(map(str, sys._xoptions.items()))],
        "path": sys.path,
        # what the interpreter and its libraries read at start-up, which a forked child cannot take on
        "start_env": sorted((k, v) for k, v in env.items() if k.startswith(_STARTUP_ENV)),
        "slurm_job": env.get("SLURM_JOB_ID", ""),
    }
    if kind == FLOWS:
        identity["kind"] = kind
        identity["prefect_env"] = sorted((k, v) for k, v in env.items() if k.startswith(_PREFECT_IMPORT_ENV))
    text = encode(dict(sorted(identity.items())))
    return f"{zlib.crc32(text):08x}{zlib.adler32(text):08x}{len(text):x}"  # a name, not a secret: cheap to import


def base_directory(env: Optional[Mapping[str, str]] = None) -> str:
    """Return the per-user directory (not created): in ``$XDG_RUNTIME_DIR`` when that is ours, else in ``$TMPDIR``."""
    env = os.environ if env is None else env
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and _owned_private(runtime):
        return os.path.join(runtime, "lute-kernel")
    tmp = env.get("TMPDIR", "") or "/tmp"
    return os.path.join(tmp, f"lute-kernel-{os.getuid()}")


def address(env: Optional[Mapping[str, str]] = None, kind: str = RUN) -> Address:
    """Return this process's address of the ``kind`` warm kernel (``RUN`` or ``FLOWS``)."""
    return Address(base_directory(env), server_key(env, kind))


def warm_kind(argv: Sequence[str]) -> Optional[str]:
    """Return which warm kernel may serve the command line ``argv`` (with its program name); None: none does."""
    if len(argv) > 1 and argv[1] in WARM_COMMANDS:
        return RUN
    if len(argv) > 2 and argv[1] == "flow" and argv[2] == "run":
        return FLOWS
    return None


def warm_disabled(env: Optional[Mapping[str, str]] = None) -> bool:
    """Return True when ``LUTE_WARM`` turns the warm kernel off for this command."""
    value = (os.environ if env is None else env).get(WARM_ENV, "").strip().lower()
    return value in ("0", "off", "no", "false")


def check_private(directory: str) -> None:
    """Raise UnsafeDirectory unless ``directory`` is a real directory of ours that nobody else may enter."""
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise UnsafeDirectory(
            f"{directory} is not a private directory of this user (owner uid {info.st_uid},"
            f" mode {stat.filemode(info.st_mode)}): no warm kernel is trusted there"
        )


def make_private(directory: str) -> None:
    """Create ``directory`` (0700) if missing, then check it is private (UnsafeDirectory if not)."""
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    check_private(directory)


MAX_SUN_PATH = 107
"""Longest unix socket path (``sun_path`` holds 108 bytes with the terminating NUL)."""


def bind_or_connect(sock: socket, path: str, bind: bool = False) -> None:
    """Connect ``sock`` to (or bind it at) ``path``, also when the path is over the unix limit.

    A long ``$TMPDIR`` or ``$XDG_RUNTIME_DIR`` must not turn the warm kernel off: a path over
    ``MAX_SUN_PATH`` is reached through the directory's descriptor (``/proc/self/fd/N/name``).
    """
    if len(os.fsencode(path)) <= MAX_SUN_PATH:
        (sock.bind if bind else sock.connect)(path)
        return
    directory = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        short = f"/proc/self/fd/{directory}/{os.path.basename(path)}"
        (sock.bind if bind else sock.connect)(short)
    finally:
        os.close(directory)


def _owned_private(path: str) -> bool:
    try:
        info = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


__all__ = [
    "FLOWS",
    "RUN",
    "WARM_COMMANDS",
    "WARM_ENV",
    "Address",
    "UnsafeDirectory",
    "address",
    "base_directory",
    "bind_or_connect",
    "check_private",
    "make_private",
    "server_key",
    "warm_disabled",
    "warm_kind",
]
