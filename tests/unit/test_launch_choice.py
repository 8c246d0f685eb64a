"""Launchers as argv builders, the launcher/ranks rules, and the per-rank environment shim."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, ClassVar, List, Tuple

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from images_fakes import fake_built_images

from lute_kernel import api
from lute_kernel.errors import EXIT_BAD_INPUT, InputError
from lute_kernel.launchers import make_launcher
from lute_kernel.launchers.mpirun import MpirunLauncher
from lute_kernel.launchers.pmi import choose_plugin, serves
from lute_kernel.launchers.srun import SrunLauncher
from lute_kernel.plan import PYTHON, ProcessSpec, build_plan
from lute_kernel.ranks import allocation_tasks, choose_launch
from lute_kernel.registry import discover
from lute_kernel.runtimes.apptainer import ApptainerRuntime
from lute_kernel.runtimes.base import Runtime
from lute_kernel.runtimes.local import LocalRuntime
from lute_kernel.sites import MpiSettings, SiteProfile
from lute_kernel.task import Resources, Task

REPO = Path(__file__).resolve().parents[2]
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


# --- MPI wire-up matches the image: srun --mpi from the image's PMI, refused before launch when none fits ---

PSANA2_MPI = {"flavour": "mpich", "pmi": ["pmi2", "pmi1"]}
OPENMPI = {"flavour": "openmpi", "pmi": ["pmix"]}


def apptainer_with(tmp_path: Path, **mpi: object) -> ApptainerRuntime:
    site = fake_built_images(
        tmp_path / "images",
        {"psana2": PSANA2_MPI, "ompi": OPENMPI, "smoke": None},
        mpi=MpiSettings.model_validate({"oversubscribe": True, **mpi}),
    )
    return ApptainerRuntime(site)


def mpi_spec(image: str, ranks: int = 2) -> ProcessSpec:
    return ProcessSpec(argv=(PYTHON, "-m", "lute_kernel.worker"), image=image, resources=Resources(ranks=ranks))


def srun_argv(runtime: Runtime, spec: ProcessSpec) -> Tuple[str, ...]:
    return build_plan(spec, runtime, SrunLauncher(runtime_site(runtime).mpi), {}).argv


def runtime_site(runtime: Runtime) -> SiteProfile:
    site = getattr(runtime, "site", None)
    return site if isinstance(site, SiteProfile) else SiteProfile(name="t")


def test_pmi_plugins_serve_their_own_interface_and_pmix_any_version() -> None:
    assert serves("pmi2", "pmi2") and serves("pmix", "pmix") and serves("pmix_v4", "pmix")
    assert not serves("pmix", "pmi2") and not serves("pmi2", "pmix") and not serves("pmi2", "pmi1")
    assert not serves("none", "pmi1") and serves("pmi1", "pmi1")
    assert choose_plugin(["pmi2", "pmi1"], ["pmix", "pmi2"]) == "pmi2"
    assert choose_plugin(["pmix"], ["pmi2", "pmix_v4", "pmix"]) == "pmix_v4"
    assert choose_plugin(["pmi2", "pmi1"], ["pmix"]) is None
    assert choose_plugin([], ["pmi2"]) is None


@given(
    interfaces=st.lists(st.sampled_from(["pmi1", "pmi2", "pmix"]), max_size=3, unique=True),
    offered=st.lists(
        st.sampled_from(["pmi1", "pmi2", "pmix", "pmix_v3", "pmix_v4", "none", "cray_shasta"]), max_size=5
    ),
)
def test_the_chosen_plugin_serves_the_images_first_interface_that_any_serves(
    interfaces: List[str], offered: List[str]
) -> None:
    chosen = choose_plugin(interfaces, offered)
    servable = [i for i in interfaces if any(serves(p, i) for p in offered)]
    if not servable:
        assert chosen is None
    else:
        assert chosen in offered and serves(chosen, servable[0])
        assert chosen == next(p for p in offered if serves(p, servable[0]))  # the site's order among those


def test_srun_takes_mpi_from_the_image(tmp_path: Path) -> None:
    rt = apptainer_with(tmp_path, srun_mpi="pmix", srun_mpi_offered=["pmix", "pmi2"], cpu_bind=None)
    assert srun_argv(rt, mpi_spec("psana2"))[:5] == ("srun", "--mpi=pmi2", "-n", "2", "--kill-on-bad-exit=1")
    assert srun_argv(rt, mpi_spec("ompi"))[:2] == ("srun", "--mpi=pmix")


def test_an_image_speaking_no_pmi_the_site_offers_is_refused_before_launch(tmp_path: Path) -> None:
    rt = apptainer_with(tmp_path, srun_mpi="pmix", srun_mpi_offered=["pmix"])
    with pytest.raises(InputError) as info:
        srun_argv(rt, mpi_spec("psana2", ranks=4))
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert str(info.value).startswith(
        "image 'psana2' speaks PMI pmi2, pmi1, and this site's Slurm (mpi.srun_mpi_offered: srun --mpi=pmix) serves"
        " pmix: its 4 ranks would not wire up (each would run alone as rank 0)."
    )


def test_an_image_without_mpi_cannot_run_several_ranks(tmp_path: Path) -> None:
    rt = apptainer_with(tmp_path)
    with pytest.raises(InputError, match=r"image 'smoke' carries no MPI .* 2 ranks would each run alone as rank 0"):
        srun_argv(rt, mpi_spec("smoke"))
    with pytest.raises(InputError, match="image 'smoke' carries no MPI"):
        build_plan(mpi_spec("smoke"), rt, MpirunLauncher(rt.site.mpi), {})


def test_one_rank_needs_no_wire_up(tmp_path: Path) -> None:
    rt = apptainer_with(tmp_path, srun_mpi="pmi2", srun_mpi_offered=["pmix"])
    assert srun_argv(rt, mpi_spec("smoke", ranks=1))[:2] == ("srun", "--mpi=pmi2")  # the site's default
    assert srun_argv(rt, mpi_spec("ompi", ranks=1))[:2] == ("srun", "--mpi=pmix")


def test_local_ranks_use_the_hosts_mpi_as_the_site_names_it() -> None:
    settings = MpiSettings(srun_mpi="pmi2", srun_mpi_offered=["pmix"], oversubscribe=True)
    plan = build_plan(mpi_spec("psana2"), LocalRuntime(), SrunLauncher(settings), {})
    assert plan.argv[:2] == ("srun", "--mpi=pmi2")


def test_the_offered_plugins_default_to_srun_mpi() -> None:
    assert MpiSettings(srun_mpi="pmix").offered_srun_mpi() == ["pmix"]
    assert MpiSettings(srun_mpi_offered=[]).offered_srun_mpi() == []


def test_mpirun_checks_the_image_speaks_what_hydra_serves(tmp_path: Path) -> None:
    rt = apptainer_with(tmp_path, mpirun_pmi=["pmi2", "pmi1"])
    assert build_plan(mpi_spec("psana2"), rt, MpirunLauncher(rt.site.mpi), {}).argv[:3] == ("mpirun", "-n", "2")
    with pytest.raises(InputError, match=r"image 'ompi' speaks PMI pmix, and mpirun \(mpi.mpirun_pmi: pmi2, pmi1\)"):
        build_plan(mpi_spec("ompi"), rt, MpirunLauncher(rt.site.mpi), {})


def test_prepare_refuses_the_mismatch_before_anything_starts(
    tmp_path: Path, make_config: Callable[..., Path], work_dir: Path
) -> None:
    site_file = tmp_path / "cluster.yaml"
    built = fake_built_images(tmp_path / "images", {"psana2": PSANA2_MPI})
    site_file.write_text(
        yaml.safe_dump(
            {
                "runtime": "apptainer",
                "images": built.images.model_dump(exclude_none=True),
                "mpi": {"srun_mpi_offered": ["pmix"], "srun_mpi": "pmix"},
            }
        )
    )
    registry = discover([REPO / "tasks"], entry_points=False)
    cfg = make_config({"TestMultiNodeCommunication": {}})
    env = {"SLURM_JOB_ID": "9", "SLURM_NTASKS": "3", "PATH": ALLOC["PATH"]}
    with pytest.raises(InputError, match="image 'psana2' speaks PMI pmi2, pmi1"):
        api.prepare("TestMultiNodeCommunication", cfg, site=str(site_file), registry=registry, host_env=env, ranks=2)
    site_file.write_text(site_file.read_text().replace("- pmix", "- pmix\n  - pmi2", 1))
    prepared = api.prepare(
        "TestMultiNodeCommunication", cfg, site=str(site_file), registry=registry, host_env=env, ranks=2
    )
    assert prepared.plan.argv[:4] == ("srun", "--mpi=pmi2", "-n", "2") and prepared.site.reference == str(site_file)
    assert list(work_dir.iterdir()) == []  # nothing written
