"""Runtimes: where a Task's process lives. Built-ins are registered here by name."""

from __future__ import annotations

from typing import Dict, Sequence

from lute_kernel.errors import InputError
from lute_kernel.runtimes.base import Runtime
from lute_kernel.runtimes.local import LocalRuntime

BUILTIN_RUNTIMES: Dict[str, type[Runtime]] = {"local": LocalRuntime}


def make_runtime(name: str, env_allowlist: Sequence[str] = ()) -> Runtime:
    """Return the runtime called ``name``."""
    try:
        cls = BUILTIN_RUNTIMES[name]
    except KeyError:
        raise InputError(
            f"runtime {name!r} is not available here (available: {', '.join(sorted(BUILTIN_RUNTIMES))})"
        ) from None
    return cls(env_allowlist=env_allowlist)
