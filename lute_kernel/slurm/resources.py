"""What a batch job asks Slurm for: the Task's defaults, then the site's, then the command line.

Pure. Owns the merge order and the checks that make bad resources an InputError before anything
is submitted. The kernel keeps one task of the allocation (as upstream LUTE): a job has the
Task's ranks plus one. Raw sbatch options (``submit … -- ARGS``, a DAG node's ``slurm_params``)
come last and decide the job's shape when they give it; an MPI Task then runs on the
allocation's tasks minus the kernel's one (upstream's rule: ``--ntasks=5`` is 4 ranks), whatever
its own default.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Tuple

from lute_kernel.errors import InputError
from lute_kernel.sites import SlurmSettings
from lute_kernel.slurm.sbatch_args import SbatchArgs
from lute_kernel.task import Task

# Slurm's --time forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S (and the words for no limit).
_TIME = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}|UNLIMITED|INFINITE", re.IGNORECASE)
# Time the job needs beyond task_timeout: start-up, the kill grace, recording the run.
START_AND_RECORD_S = 120


@dataclass(frozen=True)
class JobRequest:
    """What the command line asks for; None means "not given"."""

    nodes: Optional[int] = None
    ntasks: Optional[int] = None
    cpus_per_task: Optional[int] = None
    partition: Optional[str] = None
    account: Optional[str] = None
    time: Optional[str] = None


@dataclass(frozen=True)
class JobResources:
    """The resources of one batch job, merged and checked."""

    job_name: str
    ntasks: int
    cpus_per_task: int = 1
    nodes: Optional[int] = None
    gpus: int = 0
    partition: Optional[str] = None
    account: Optional[str] = None
    time: Optional[str] = None
    extra_args: Tuple[str, ...] = ()
    ranks: Optional[int] = None
    """MPI ranks the job's kernel is told to run (from raw sbatch options); None: the usual rules."""


def task_ranks(task: type[Task]) -> int:
    """Return how many ranks the Task runs on by default (1 unless it is an MPI Task)."""
    if not task.mpi:
        return 1
    return task.resources.ranks if task.resources.ranks > 1 else max(task.min_ranks, 1)


def time_for_timeout(task_timeout_s: float, grace_s: float) -> str:
    """Return a --time (whole minutes) that covers the Task's timeout, its kill grace and start-up."""
    return str(max(1, math.ceil((task_timeout_s + grace_s + START_AND_RECORD_S) / 60)))


def merge_resources(
    task: type[Task], site: SlurmSettings, request: JobRequest, sbatch: Optional[SbatchArgs] = None
) -> JobResources:
    """Merge in order: the Task's defaults, the site's ``slurm:`` settings, the command line, raw sbatch options.

    ``time`` stays None when nobody set it (``time_for_timeout`` fills it from the config).
    Raises InputError for resources Slurm would refuse or the Task cannot run with.
    """
    merged = JobResources(
        job_name=task.__name__,
        ntasks=task_ranks(task) + 1,  # the kernel keeps one task
        cpus_per_task=task.resources.cpus_per_rank,
        gpus=task.resources.gpus,
        partition=site.partition,
        account=site.account,
        time=site.time,
        extra_args=tuple(site.extra_args),
    )
    given = {name: value for name, value in vars(request).items() if value is not None}
    merged = replace(merged, **given)
    if sbatch:
        merged = _with_sbatch_args(task, merged, sbatch)
    check_resources(task, merged)
    return merged


def _with_sbatch_args(task: type[Task], job: JobResources, sbatch: SbatchArgs) -> JobResources:
    """Take what raw sbatch options say (they reach sbatch too, so the script's lines must agree)."""
    raw: Dict[str, Any] = {
        "nodes": sbatch.nodes,
        "cpus_per_task": sbatch.cpus_per_task,
        "partition": sbatch.partition,
        "account": sbatch.account,
        "time": sbatch.time,
    }
    job = replace(job, **{name: value for name, value in raw.items() if value is not None})
    count = sbatch.task_count()
    if count is None:  # Slurm's own default: at least one task per node
        return replace(job, ntasks=max(job.ntasks, job.nodes or 1))
    job = replace(job, ntasks=count)
    if task.mpi:
        ranks = max(count - 1, 1)  # the kernel keeps one task of the allocation
        if ranks < task.min_ranks:
            raise InputError(
                f"{task.__name__} needs at least {task.min_ranks} MPI ranks and the kernel keeps one task:"
                f" the sbatch options give {count} task(s), so at least {task.min_ranks + 1} are needed"
            )
        job = replace(job, ranks=ranks)
    return job


def check_resources(task: type[Task], job: JobResources) -> None:
    """Raise InputError when ``job`` is not something to submit for ``task``."""
    for name in ("ntasks", "cpus_per_task", "nodes"):
        value = getattr(job, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, not {value}")
    if job.nodes is not None and job.nodes > job.ntasks:
        raise InputError(f"--nodes {job.nodes} is more than --ntasks {job.ntasks}: every node needs a task")
    ranks = task_ranks(task)
    if task.mpi and job.ranks is None and job.ntasks < ranks + 1:
        raise InputError(
            f"{task.__name__} runs {ranks} MPI ranks and the kernel keeps one task:"
            f" --ntasks must be at least {ranks + 1}, not {job.ntasks}"
        )
    if job.time is not None and not _TIME.fullmatch(job.time):
        raise InputError(
            f"--time {job.time!r} is not a Slurm time: use minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"
        )
    for name in ("partition", "account"):
        value = getattr(job, name)
        if value is not None and (not value or any(c.isspace() or not c.isprintable() for c in value)):
            raise InputError(f"--{name} {value!r} is not a Slurm {name} name")
    for arg in job.extra_args:
        if not arg.startswith("-") or not arg.isprintable():
            raise InputError(f"slurm.extra_args: {arg!r} is not an sbatch option (they start with '-')")
