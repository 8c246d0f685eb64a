"""Launchers: how a Task's processes are started (one process, srun ranks, mpirun ranks).

Each built-in is imported when it is asked for: a run imports the launcher it uses only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, Optional

from lute_kernel.errors import InputError
from lute_kernel.launchers.base import Launcher

if TYPE_CHECKING:
    from lute_kernel.sites import SiteProfile


def _direct(site: SiteProfile) -> Launcher:
    from lute_kernel.launchers.direct import DirectLauncher

    return DirectLauncher()


def _srun(site: SiteProfile) -> Launcher:
    from lute_kernel.launchers.srun import SrunLauncher

    return SrunLauncher(site.mpi)


def _mpirun(site: SiteProfile) -> Launcher:
    from lute_kernel.launchers.mpirun import MpirunLauncher

    return MpirunLauncher(site.mpi)


BUILTIN_LAUNCHERS: Dict[str, Callable[[SiteProfile], Launcher]] = {"direct": _direct, "srun": _srun, "mpirun": _mpirun}


def make_launcher(name: str, site: Optional[SiteProfile] = None) -> Launcher:
    """Return the launcher called ``name``, set up from the site profile (default: the local site)."""
    if name not in BUILTIN_LAUNCHERS:
        raise InputError(f"launcher {name!r} is not available here (available: {', '.join(sorted(BUILTIN_LAUNCHERS))})")
    if site is None:
        from lute_kernel.sites import load_site

        site = load_site()
    return BUILTIN_LAUNCHERS[name](site)
