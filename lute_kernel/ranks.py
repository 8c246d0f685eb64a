"""Choosing the launcher and the number of ranks of a run, before anything starts. Pure.

Owns the rules: a single-rank run uses the site's launcher (``direct``); an MPI Task on several
ranks uses srun inside a Slurm allocation, else mpirun when the site allows it. Ranks come from the command line,
else the Task's own ``resources.ranks`` when it sets more than one, else the allocation's tasks
minus the one the kernel keeps (as upstream LUTE), else the Task's minimum. Too few ranks or cores
is an InputError, raised before launch.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from typing import Mapping, Optional

from lute_kernel.errors import InputError
from lute_kernel.sites import SiteProfile
from lute_kernel.task import Resources, Task


@dataclass(frozen=True)
class LaunchChoice:
    """The launcher's name and the resources of one run."""

    launcher: str
    resources: Resources


def allocation_tasks(env: Mapping[str, str]) -> Optional[int]:
    """Return the number of tasks of the Slurm allocation we are in, or None outside one."""
    if not env.get("SLURM_JOB_ID"):
        return None
    for name in ("SLURM_NTASKS", "SLURM_NPROCS"):
        value = env.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def choose_launch(
    task: type[Task],
    site: SiteProfile,
    env: Mapping[str, str],
    *,
    launcher: Optional[str] = None,
    ranks: Optional[int] = None,
) -> LaunchChoice:
    """Return how to launch ``task`` here; raise InputError when it cannot be."""
    if ranks is not None and ranks < 1:
        raise InputError(f"--ranks must be at least 1, not {ranks}")
    if not task.mpi:
        if ranks not in (None, 1):
            raise InputError(f"{task.__name__} is not an MPI Task; it runs on one rank")
        return LaunchChoice(launcher or site.launcher, replace(task.resources, ranks=1))
    in_allocation = allocation_tasks(env)
    count = ranks or (task.resources.ranks if task.resources.ranks > 1 else None)
    if count is None and in_allocation is not None:
        count = max(in_allocation - 1, 1)  # the kernel keeps one task of the allocation
    count = count or task.min_ranks
    if count < task.min_ranks:
        raise InputError(f"{task.__name__} needs at least {task.min_ranks} ranks; {count} requested")
    if count == 1 and launcher is None:  # an MPI-capable Task on one rank needs no MPI launcher
        return LaunchChoice(site.launcher, replace(task.resources, ranks=1))
    name = launcher or _mpi_launcher(site, in_allocation is not None)
    name = _installed_launcher(name, site, env, chosen_by_user=launcher is not None)
    if name == "srun" and in_allocation is None:
        raise InputError(
            "srun needs a Slurm allocation (SLURM_JOB_ID is not set): use `lute-kernel submit`, salloc,"
            " or --launcher mpirun"
        )
    _check_cores(name, count, task.resources.cpus_per_rank, in_allocation, site.mpi.oversubscribe)
    return LaunchChoice(name, replace(task.resources, ranks=count))


def _installed_launcher(name: str, site: SiteProfile, env: Mapping[str, str], *, chosen_by_user: bool) -> str:
    """Return ``name`` if its program is on PATH; fall back from srun to mpirun when the site allows it."""
    programs = {"srun": "srun", "mpirun": site.mpi.mpirun}
    path = env.get("PATH")
    if name not in programs or shutil.which(programs[name], path=path):
        return name
    if (
        name == "srun"
        and not chosen_by_user
        and site.mpi.fallback_to_mpirun
        and shutil.which(site.mpi.mpirun, path=path)
    ):
        return "mpirun"
    raise InputError(f"{programs[name]} is not installed here (not on PATH): it launches MPI Tasks with {name}")


def _mpi_launcher(site: SiteProfile, in_allocation: bool) -> str:
    if site.mpi.launcher != "auto":
        return site.mpi.launcher
    if in_allocation:
        return "srun"
    if site.mpi.fallback_to_mpirun:
        return "mpirun"
    raise InputError("not inside a Slurm allocation and this site does not fall back to mpirun")


def _check_cores(
    launcher: str, ranks: int, cpus_per_rank: int, in_allocation: Optional[int], oversubscribe: bool
) -> None:
    if launcher == "srun" and in_allocation is not None and ranks > in_allocation - 1 and in_allocation > 1:
        raise InputError(
            f"{ranks} ranks do not fit the allocation's {in_allocation} tasks (one is kept for the kernel)"
        )
    cores = os.cpu_count() or 1
    if launcher == "mpirun" and ranks * cpus_per_rank > cores and not oversubscribe:
        raise InputError(
            f"{ranks} ranks x {cpus_per_rank} CPUs need more cores than this node has ({cores});"
            " set mpi.oversubscribe in the site profile to run them anyway"
        )
