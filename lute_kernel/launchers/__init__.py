"""Launchers: how a Task's processes are started (one process, srun ranks, mpirun ranks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, Optional

from lute_kernel.errors import InputError
from lute_kernel.launchers.base import Launcher
from lute_kernel.launchers.direct import DirectLauncher
from lute_kernel.launchers.mpirun import MpirunLauncher
from lute_kernel.launchers.srun import SrunLauncher

if TYPE_CHECKING:
    from lute_kernel.sites import SiteProfile

BUILTIN_LAUNCHERS: Dict[str, Callable[[SiteProfile], Launcher]] = {
    "direct": lambda site: DirectLauncher(),
    "srun": lambda site: SrunLauncher(site.mpi),
    "mpirun": lambda site: MpirunLauncher(site.mpi),
}


def make_launcher(name: str, site: Optional[SiteProfile] = None) -> Launcher:
    """Return the launcher called ``name``, set up from the site profile (default: the local site)."""
    if name not in BUILTIN_LAUNCHERS:
        raise InputError(f"launcher {name!r} is not available here (available: {', '.join(sorted(BUILTIN_LAUNCHERS))})")
    if site is None:
        from lute_kernel.sites import load_site

        site = load_site()
    return BUILTIN_LAUNCHERS[name](site)
