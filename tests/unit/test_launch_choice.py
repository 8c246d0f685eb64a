"""Launchers as argv builders, the launcher/ranks rules, and the per-rank environment shim."""

from __future__ import annotations

import sys
from typing import ClassVar

import pytest

from lute_kernel.errors import InputError
from lute_kernel.launchers import make_launcher
from lute_kernel.launchers.mpirun import MpirunLauncher
from lute_kernel.launchers.srun import SrunLauncher
from lute_kernel.plan import PYTHON, ProcessSpec, build_plan
from lute_kernel.rank_env import container_env
from lute_kernel.ranks import allocation_tasks, choose_launch
from lute_kernel.runtimes.local import LocalRuntime
from lute_kernel.sites import MpiSettings, SiteProfile
from lute_kernel.task import Resources, Task

ALLOC = {"SLURM_JOB_ID": "42", "SLURM_NTASKS": "5", "PATH": "FAKEBIN"}


class Serial(Task):
    pass


class Parallel(Task):
    mpi: ClassVar[bool] = True


class FixedRanks(Task):
    mpi: ClassVar[bool] = True
    resources: ClassVar[Resources] = Resources(ranks=3, cpus_per_rank=2)


class NeedsThree(Task):
    mpi: ClassVar[bool] = True
    min_ranks: ClassVar[int] = 3


def site(**mpi: object) -> SiteProfile:
    return SiteProfile(name="t", mpi=MpiSettings.model_validate({"oversubscribe": True, **mpi}))


@pytest.fixture(autouse=True)
def launchers_on_path(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """srun and mpirun as fake programs, so the rules do not depend on this machine."""
    import os
    from pathlib import Path

    folder = Path(str(tmp_path)) / "bin"
    folder.mkdir()
    for name in ("srun", "mpirun"):
        program = folder / name
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    ALLOC["PATH"] = str(folder)
    monkeypatch.setenv("PATH", str(folder) + os.pathsep + os.environ.get("PATH", ""))


def test_missing_launchers_are_clear_errors_or_fall_back(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    only_mpirun = Path(str(tmp_path)) / "only-mpirun"
    only_mpirun.mkdir()
    (only_mpirun / "mpirun").write_text("#!/bin/sh\n")
    (only_mpirun / "mpirun").chmod(0o755)
    env = {**ALLOC, "PATH": str(only_mpirun)}
    assert choose_launch(Parallel, site(), env, ranks=2).launcher == "mpirun"  # srun missing: the site falls back
    with pytest.raises(InputError, match="srun is not installed here"):
        choose_launch(Parallel, site(), env, ranks=2, launcher="srun")
    with pytest.raises(InputError, match="mpirun is not installed here"):
        choose_launch(Parallel, site(), {"PATH": str(Path(str(tmp_path)) / "nothing")}, ranks=2)


def test_srun_argv() -> None:
    argv = SrunLauncher(MpiSettings(srun_args=["--overlap"])).wrap(["python3", "-m", "w"], Resources(ranks=4))
    assert argv == [
        "srun",
        "--mpi=pmi2",
        "-n",
        "4",
        "--cpu-bind=cores",
        "--kill-on-bad-exit=1",
        "--overlap",
        "python3",
        "-m",
        "w",
    ]
    argv = SrunLauncher(MpiSettings(srun_mpi="pmix", cpu_bind=None)).wrap(["x"], Resources(ranks=2, cpus_per_rank=3))
    assert argv == ["srun", "--mpi=pmix", "-n", "2", "--cpus-per-task=3", "--kill-on-bad-exit=1", "x"]


def test_mpirun_argv() -> None:
    argv = MpirunLauncher(MpiSettings(mpirun="mpiexec", mpirun_args=["-bind-to", "core"])).wrap(
        ["x"], Resources(ranks=2)
    )
    assert argv == ["mpiexec", "-n", "2", "-bind-to", "core", "x"]


def test_launchers_compose_around_the_runtime() -> None:
    spec = ProcessSpec(argv=(PYTHON, "-m", "lute_kernel.worker"), resources=Resources(ranks=2))
    plan = build_plan(spec, LocalRuntime(), make_launcher("mpirun", site()), {})
    assert plan.argv == ("mpirun", "-n", "2", sys.executable, "-m", "lute_kernel.worker") and plan.ranks == 2


def test_allocation_tasks() -> None:
    assert allocation_tasks({}) is None
    assert allocation_tasks(ALLOC) == 5
    assert allocation_tasks({"SLURM_JOB_ID": "1"}) == 1


def test_a_serial_task_runs_direct_on_one_rank() -> None:
    assert choose_launch(Serial, site(), ALLOC).launcher == "direct"
    with pytest.raises(InputError, match="not an MPI Task"):
        choose_launch(Serial, site(), {}, ranks=2)


def test_mpi_ranks_default_to_the_allocation_minus_the_kernel() -> None:
    choice = choose_launch(Parallel, site(), ALLOC)
    assert (choice.launcher, choice.resources.ranks) == ("srun", 4)


def test_the_command_line_and_the_task_override_the_allocation() -> None:
    assert choose_launch(Parallel, site(), ALLOC, ranks=2).resources.ranks == 2
    assert choose_launch(FixedRanks, site(), ALLOC).resources == Resources(ranks=3, cpus_per_rank=2)


def test_off_slurm_an_mpi_task_uses_mpirun_or_fails_clearly() -> None:
    assert choose_launch(Parallel, site(), {"PATH": ALLOC["PATH"]}, ranks=2).launcher == "mpirun"
    with pytest.raises(InputError, match="does not fall back to mpirun"):
        choose_launch(Parallel, site(fallback_to_mpirun=False), {}, ranks=2)
    with pytest.raises(InputError, match="srun needs a Slurm allocation"):
        choose_launch(Parallel, site(), {}, ranks=2, launcher="srun")


def test_one_rank_of_an_mpi_capable_task_needs_no_mpi_launcher() -> None:
    assert choose_launch(Parallel, site(), {}).launcher == "direct"


def test_too_few_ranks_or_cores_are_input_errors() -> None:
    with pytest.raises(InputError, match="needs at least 3 ranks; 2 requested"):
        choose_launch(NeedsThree, site(), {}, ranks=2)
    with pytest.raises(InputError, match="do not fit the allocation's 5 tasks"):
        choose_launch(Parallel, site(), ALLOC, ranks=5)
    with pytest.raises(InputError, match="need more cores than this node has"):
        choose_launch(Parallel, site(oversubscribe=False), {}, ranks=10_000)
    with pytest.raises(InputError, match="at least 1"):
        choose_launch(Parallel, site(), {}, ranks=0)


def test_the_rank_shim_passes_launcher_variables_into_the_container_only() -> None:
    env = {"PMI_RANK": "1", "PMI_FD": "7", "SLURM_PROCID": "1", "HOME": "/root", "SECRET": "x"}
    out = container_env(env)
    assert {k: v for k, v in out.items() if k.startswith("APPTAINERENV_")} == {
        "APPTAINERENV_PMI_RANK": "1",
        "APPTAINERENV_PMI_FD": "7",
        "APPTAINERENV_SLURM_PROCID": "1",
    }
    assert out["HOME"] == "/root"  # the apptainer client's own environment is left alone
