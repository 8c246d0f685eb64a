"""The exact argv every containerised Task runs (ApptainerRuntime.wrap), from fake built images.

Single rank, MPI ranks (the rank_env shim, MPI flags and env), GPUs (``--nv`` and their env),
sandboxes (``images.run_from: sandbox``) and the site's binds. ``--no-eval`` always follows ``exec``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from images_fakes import fake_built_images

from lute_kernel.errors import InputError
from lute_kernel.launchers.direct import DirectLauncher
from lute_kernel.launchers.srun import SrunLauncher
from lute_kernel.plan import PYTHON, ProcessSpec, build_plan
from lute_kernel.runtimes.apptainer import ApptainerRuntime, parse_bind
from lute_kernel.runtimes.base import kernel_package_dir
from lute_kernel.site_settings import ApptainerSettings, MpiSettings
from lute_kernel.task import Resources

KERNEL = str(kernel_package_dir())
KERNEL_ROOT = str(kernel_package_dir().parent)
PSANA2_MPI = {"flavour": "mpich", "pmi": ["pmi2", "pmi1"]}
HOST = {
    "PATH": "/usr/bin",
    "HOME": "/home/me",
    "LANG": "C.UTF-8",
    "LUTE_RUN": "7",
    "SLURM_JOB_ID": "42",
    "CUDA_VISIBLE_DEVICES": "0,1",
    "NVIDIA_VISIBLE_DEVICES": "all",
    "SECRET": "never inside",
    "APPTAINER_CACHEDIR": "/cache",
}


@pytest.fixture(autouse=True)
def no_path_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LUTE_RECIPES_DIR", "LUTE_IMAGES_DIR", "LUTE_IMAGE_CACHE"):
        monkeypatch.delenv(name, raising=False)


def worker_spec(**changes: Any) -> ProcessSpec:
    base: Dict[str, Any] = dict(
        argv=(PYTHON, "-m", "lute_kernel.worker"),
        env={"LUTE_TASK": "Test", "PYTHONUNBUFFERED": "1"},
        cwd="/work",
        image="smoke",
        run_dir="/tmp/lute-0123456789ab",
        read_only_paths=("/repo/tasks",),
        writable_paths=("/work",),
    )
    base.update(changes)
    return ProcessSpec(**base)


def runtime(tmp_path: Path, images: Optional[Dict[str, Any]] = None, **site: Any) -> ApptainerRuntime:
    return ApptainerRuntime(fake_built_images(tmp_path, images or {"smoke": None, "psana2": PSANA2_MPI}, **site))


def sif(tmp_path: Path, name: str) -> str:
    return str(tmp_path / "cache" / f"{name}-{'0' * 16}.sif")


def common_binds() -> List[str]:
    return [
        "--bind", "/tmp/lute-0123456789ab:/lute/ipc",
        "--bind", f"{KERNEL}:{KERNEL}:ro",
        "--bind", "/repo/tasks:/repo/tasks:ro",
        "--bind", "/work",
    ]  # fmt: skip


def test_a_single_rank_worker(tmp_path: Path) -> None:
    plan = build_plan(worker_spec(), runtime(tmp_path), DirectLauncher(), HOST)
    assert list(plan.argv) == [
        "apptainer", "exec", "--no-eval", "--containall", "--cleanenv", "--no-home",
        "--pwd", "/work",
        *common_binds(),
        "--env", "LANG=C.UTF-8",
        "--env", "LUTE_RUN=7",
        "--env", "LUTE_TASK=Test",
        "--env", "PYTHONNOUSERSITE=1",
        "--env", f"PYTHONPATH={KERNEL_ROOT}",
        "--env", "PYTHONUNBUFFERED=1",
        "--env", "SLURM_JOB_ID=42",
        sif(tmp_path, "smoke"), "python3", "-m", "lute_kernel.worker",
    ]  # fmt: skip
    # The apptainer client's own environment: what it and a launcher need, nothing for the Task.
    assert plan.env == {"PATH": "/usr/bin", "HOME": "/home/me", "LANG": "C.UTF-8", "SLURM_JOB_ID": "42",
                        "APPTAINER_CACHEDIR": "/cache"}  # fmt: skip
    assert (plan.image, plan.task_env_prefix, plan.ipc_endpoint) == ("smoke", "APPTAINERENV_", "ipc:///lute/ipc/s")


def test_no_eval_follows_exec_whatever_the_site_flags(tmp_path: Path) -> None:
    settings = ApptainerSettings(exec_flags=["--contain"], extra_args=["--writable-tmpfs"], binary="singularity")
    argv = runtime(tmp_path, apptainer=settings).wrap(worker_spec(env={}))
    assert argv[:5] == ["singularity", "exec", "--no-eval", "--contain", "--writable-tmpfs"]
    assert argv.count("--no-eval") == 1


def test_a_value_that_looks_like_a_shell_command_is_one_literal_argument(tmp_path: Path) -> None:
    evil = "$(touch /tmp/pwned) `id` ; rm -rf ~ && echo $HOME"
    argv = runtime(tmp_path).wrap(worker_spec(env={"LUTE_X": evil}))
    assert argv[argv.index(f"LUTE_X={evil}") - 1] == "--env" and "--no-eval" in argv


def test_mpi_ranks_get_the_rank_env_file_the_mpi_flags_and_a_shared_dev_shm(tmp_path: Path) -> None:
    spec = worker_spec(image="psana2", env={"LUTE_TASK": "T"}, resources=Resources(ranks=2))
    launcher = SrunLauncher(MpiSettings(cpu_bind=None))
    plan = build_plan(spec, runtime(tmp_path), launcher, HOST)
    assert list(plan.argv) == [
        "srun", "--mpi=pmi2", "-n", "2", "--kill-on-bad-exit=1",
        "apptainer", "exec", "--no-eval", "--contain", "--cleanenv", "--no-home",
        "--env-file", str(Path(KERNEL_ROOT) / "lute_kernel" / "runtimes" / "rank.env"),
        "--pwd", "/work",
        *common_binds(),
        "--bind", "/tmp/lute-0123456789ab/shm:/dev/shm",
        "--env", "LANG=C.UTF-8",
        "--env", "LUTE_RUN=7",
        "--env", "LUTE_TASK=T",
        "--env", "PYTHONNOUSERSITE=1",
        "--env", f"PYTHONPATH={KERNEL_ROOT}",
        "--env", "SLURM_JOB_ID=42",
        sif(tmp_path, "psana2"), "python3", "-m", "lute_kernel.worker",
    ]  # fmt: skip
    assert "PYTHONPATH" not in plan.env  # no host interpreter per rank any more
    assert plan.private_dirs == ("shm",)  # made by the executor inside the run directory
    assert plan.ranks == 2


def test_without_a_shared_dev_shm_mpich_is_kept_off_shared_memory(tmp_path: Path) -> None:
    spec = worker_spec(image="psana2", resources=Resources(ranks=3))
    rt = runtime(tmp_path, apptainer=ApptainerSettings(mpi_shm=False, mpi_env={"A": "b"}))
    argv = rt.wrap(replace(spec, env=rt.task_environment(spec, {})))
    binds = [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"]
    assert not any(b.endswith(":/dev/shm") for b in binds) and rt.private_dirs(spec) == []
    assert "A=b" in argv and "MPIR_CVAR_NOLOCAL=1" in argv


def test_the_rank_env_file_copies_launcher_variables_only() -> None:
    from lute_kernel.runtimes.apptainer import RANK_ENV_FILE

    text = RANK_ENV_FILE.read_text()
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert body[0].startswith("for lute_rank_var in ${!PMI_@} ${!PMIX_@} ${!SLURM_@}")
    assert body[-1] == "unset lute_rank_var"


def test_a_gpu_task_gets_nv_and_the_gpu_env(tmp_path: Path) -> None:
    spec = worker_spec(env={}, resources=Resources(gpus=1))
    argv = build_plan(spec, runtime(tmp_path), DirectLauncher(), HOST).argv
    assert list(argv[:8]) == [
        "apptainer", "exec", "--no-eval", "--containall", "--cleanenv", "--no-home", "--nv", "--pwd",
    ]  # fmt: skip
    envs = [argv[i + 1] for i, a in enumerate(argv) if a == "--env"]
    assert "CUDA_VISIBLE_DEVICES=0,1" in envs and "NVIDIA_VISIBLE_DEVICES=all" in envs
    cpu_only = build_plan(worker_spec(env={}), runtime(tmp_path / "b"), DirectLauncher(), HOST).argv
    assert "--nv" not in cpu_only and not any(a.startswith(("CUDA_", "NVIDIA_")) for a in cpu_only)


def test_a_sandbox_site_runs_the_unpacked_copy(tmp_path: Path) -> None:
    argv = runtime(tmp_path, run_from="sandbox").wrap(worker_spec(env={}))
    assert argv[-4:] == [str(tmp_path / "cache" / f"smoke-{'0' * 16}.sandbox"), "python3", "-m", "lute_kernel.worker"]


def test_a_binary_task_runs_its_own_argv(tmp_path: Path) -> None:
    argv = runtime(tmp_path).wrap(worker_spec(argv=("/repo/tasks/bin/test_threads", "3"), env={}))
    assert argv[-3:] == [sif(tmp_path, "smoke"), "/repo/tasks/bin/test_threads", "3"]


def test_site_binds_present_ones_in_order_missing_ones_skipped(tmp_path: Path) -> None:
    data, scratch = tmp_path / "data", tmp_path / "scratch"
    data.mkdir()
    scratch.mkdir()
    binds = [str(data), f"{scratch}:/scratch:ro", str(tmp_path / "absent"), f"{data}:/inside", f"{tmp_path}/gone:/x:ro"]
    argv = runtime(tmp_path, apptainer=ApptainerSettings(binds=binds)).wrap(worker_spec(env={}))
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"] == [
        "/tmp/lute-0123456789ab:/lute/ipc",
        f"{KERNEL}:{KERNEL}:ro",
        "/repo/tasks:/repo/tasks:ro",
        "/work",
        f"{data}:{data}",
        f"{scratch}:/scratch:ro",
        f"{data}:/inside",
    ]


@pytest.mark.parametrize(
    ("spec", "parts"),
    [
        ("/d", ("/d", "/d", "")),
        ("/d:/in", ("/d", "/in", "")),
        ("/d:/in:ro", ("/d", "/in", "ro")),
        ("/d::ro", ("/d", "/d", "ro")),
    ],
)
def test_bind_forms(spec: str, parts: Any) -> None:
    assert parse_bind(spec) == parts


@pytest.mark.parametrize("spec", ["", ":/in", "/a:/b:ro:x"])
def test_bad_binds_are_input_errors(spec: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="bad bind"):
        parse_bind(spec)
    with pytest.raises(InputError, match="bad bind"):
        runtime(tmp_path, apptainer=ApptainerSettings(binds=[spec])).wrap(worker_spec(env={}))


def test_a_task_without_an_image_or_with_an_unbuilt_one_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="names no image"):
        runtime(tmp_path).wrap(worker_spec(image=None))
    with pytest.raises(InputError, match="unknown image 'crystfel'"):
        runtime(tmp_path).wrap(worker_spec(image="crystfel"))
