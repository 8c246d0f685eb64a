"""Runtimes: where a Task's process lives. Built-ins are registered here by name, imported when asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, Optional

from lute_kernel.errors import InputError
from lute_kernel.runtimes.base import Runtime

if TYPE_CHECKING:
    from lute_kernel.sites import SiteProfile


def _local(site: SiteProfile) -> Runtime:
    from lute_kernel.runtimes.local import LocalRuntime

    return LocalRuntime(env_allowlist=site.env_allowlist)


def _apptainer(site: SiteProfile) -> Runtime:
    from lute_kernel.runtimes.apptainer import ApptainerRuntime

    return ApptainerRuntime(site)


BUILTIN_RUNTIMES: Dict[str, Callable[[SiteProfile], Runtime]] = {"local": _local, "apptainer": _apptainer}


def make_runtime(name: str, site: Optional[SiteProfile] = None) -> Runtime:
    """Return the runtime called ``name``, set up from the site profile (default: the local site)."""
    if name not in BUILTIN_RUNTIMES:
        raise InputError(f"runtime {name!r} is not available here (available: {', '.join(sorted(BUILTIN_RUNTIMES))})")
    if site is None:
        from lute_kernel.sites import load_site

        site = load_site()
    return BUILTIN_RUNTIMES[name](site)
