"""Job resources (lute_kernel.slurm.resources): Task defaults, then the site, then the command line."""

from __future__ import annotations

from typing import ClassVar

import pytest

from lute_kernel.errors import InputError
from lute_kernel.sites import SlurmSettings
from lute_kernel.slurm.resources import JobRequest, JobResources, merge_resources, task_ranks, time_for_timeout
from lute_kernel.task import Resources, Task


class OneRank(Task):
    """A plain Task."""


class Threaded(Task):
    """Four CPUs for its one process."""

    resources: ClassVar[Resources] = Resources(cpus_per_rank=4)


class MpiFour(Task):
    """An MPI Task that asks for four ranks of two CPUs."""

    mpi = True
    resources: ClassVar[Resources] = Resources(ranks=4, cpus_per_rank=2, gpus=1)


class MpiAtLeastThree(Task):
    """An MPI Task with a minimum only."""

    mpi = True
    min_ranks = 3


SITE = SlurmSettings(partition="milano", account="lcls:xpptut15", time="30", extra_args=["--qos=preemptable"])


def test_task_defaults_alone() -> None:
    assert merge_resources(OneRank, SlurmSettings(), JobRequest()) == JobResources(
        job_name="OneRank", ntasks=2, cpus_per_task=1
    )
    assert merge_resources(Threaded, SlurmSettings(), JobRequest()).cpus_per_task == 4


def test_the_kernel_keeps_one_task() -> None:
    assert [task_ranks(t) for t in (OneRank, Threaded, MpiFour, MpiAtLeastThree)] == [1, 1, 4, 3]
    assert merge_resources(MpiFour, SlurmSettings(), JobRequest()).ntasks == 5
    assert merge_resources(MpiAtLeastThree, SlurmSettings(), JobRequest()).ntasks == 4


def test_the_site_overrides_the_task() -> None:
    assert merge_resources(MpiFour, SITE, JobRequest()) == JobResources(
        job_name="MpiFour",
        ntasks=5,
        cpus_per_task=2,
        gpus=1,
        partition="milano",
        account="lcls:xpptut15",
        time="30",
        extra_args=("--qos=preemptable",),
    )


def test_the_command_line_overrides_both() -> None:
    request = JobRequest(nodes=2, ntasks=9, cpus_per_task=1, partition="roma", account="lcls:other", time="2:00:00")
    assert merge_resources(MpiFour, SITE, request) == JobResources(
        job_name="MpiFour",
        ntasks=9,
        cpus_per_task=1,
        nodes=2,
        gpus=1,
        partition="roma",
        account="lcls:other",
        time="2:00:00",
        extra_args=("--qos=preemptable",),
    )


def test_unset_time_stays_unset_and_comes_from_the_timeout() -> None:
    assert merge_resources(OneRank, SlurmSettings(), JobRequest()).time is None
    assert time_for_timeout(600, 10) == "13"  # 600 s + 10 s grace + 2 min start and record, in whole minutes
    assert time_for_timeout(0, 0) == "2"


@pytest.mark.parametrize("time", ["5", "05:30", "1:00:00", "2-0", "2-12:30", "2-12:30:00", "UNLIMITED", "infinite"])
def test_slurm_time_forms_are_accepted(time: str) -> None:
    assert merge_resources(OneRank, SlurmSettings(), JobRequest(time=time)).time == time


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (JobRequest(ntasks=0), "--ntasks must be at least 1, not 0"),
        (JobRequest(cpus_per_task=0), "--cpus-per-task must be at least 1, not 0"),
        (JobRequest(nodes=0), "--nodes must be at least 1, not 0"),
        (JobRequest(nodes=3, ntasks=2), "--nodes 3 is more than --ntasks 2"),
        (JobRequest(time="1h"), "--time '1h' is not a Slurm time"),
        (JobRequest(time="1:2:3:4"), "--time '1:2:3:4' is not a Slurm time"),
        (JobRequest(partition="my queue"), "--partition 'my queue' is not a Slurm partition name"),
        (JobRequest(account=""), "--account '' is not a Slurm account name"),
    ],
)
def test_bad_resources_are_input_errors(request_: JobRequest, message: str) -> None:
    with pytest.raises(InputError) as info:
        merge_resources(OneRank, SlurmSettings(), request_)
    assert str(info.value).startswith(message)
    assert info.value.exit_code == 2


def test_an_mpi_task_needs_its_ranks_plus_the_kernels_task() -> None:
    with pytest.raises(InputError, match=r"MpiFour runs 4 MPI ranks and the kernel keeps one task: --ntasks must be"):
        merge_resources(MpiFour, SlurmSettings(), JobRequest(ntasks=4))
    with pytest.raises(InputError, match="MpiAtLeastThree runs 3 MPI ranks"):
        merge_resources(MpiAtLeastThree, SlurmSettings(), JobRequest(ntasks=3))
    assert merge_resources(OneRank, SlurmSettings(), JobRequest(ntasks=1)).ntasks == 1  # a plain Task shares it


def test_site_extra_args_must_be_options() -> None:
    with pytest.raises(InputError, match=r"slurm\.extra_args: 'qos=normal' is not an sbatch option"):
        merge_resources(OneRank, SlurmSettings(extra_args=["qos=normal"]), JobRequest())
