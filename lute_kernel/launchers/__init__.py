"""Launchers: how a Task's process is started (one process now; srun/mpirun in a later issue)."""

from __future__ import annotations

from typing import Dict

from lute_kernel.errors import InputError
from lute_kernel.launchers.base import Launcher
from lute_kernel.launchers.direct import DirectLauncher

BUILTIN_LAUNCHERS: Dict[str, type[Launcher]] = {"direct": DirectLauncher}


def make_launcher(name: str) -> Launcher:
    """Return the launcher called ``name``."""
    try:
        return BUILTIN_LAUNCHERS[name]()
    except KeyError:
        raise InputError(
            f"launcher {name!r} is not available here (available: {', '.join(sorted(BUILTIN_LAUNCHERS))})"
        ) from None
