"""Plans, runtimes and launchers: pure argv/env composition (lute_kernel.plan, runtimes, launchers)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import pytest

import lute_kernel
from lute_kernel import api
from lute_kernel.errors import EXIT_BAD_INPUT, InputError
from lute_kernel.launchers import BUILTIN_LAUNCHERS, make_launcher
from lute_kernel.launchers.base import Launcher, LauncherCapabilities
from lute_kernel.launchers.direct import DirectLauncher
from lute_kernel.plan import PYTHON, LaunchPlan, ProcessSpec, build_plan
from lute_kernel.registry import discover
from lute_kernel.runtimes import BUILTIN_RUNTIMES, make_runtime
from lute_kernel.runtimes.base import HOST_ENV_ALLOWLIST, TASK_ENV_ALLOWLIST, Runtime, RuntimeCapabilities, allowed_env
from lute_kernel.runtimes.local import LocalRuntime
from lute_kernel.sites import SiteProfile
from lute_kernel.task import Resources

REPO = Path(__file__).resolve().parents[2]
KERNEL_ROOT = str(Path(lute_kernel.__file__).resolve().parents[1])

HOST_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/me",
    "LC_ALL": "C.UTF-8",
    "LUTE_SITE": "local",
    "LUTE_X": "1",
    "SLURM_JOB_ID": "1234",
    "SLURM_NTASKS": "4",
    "OMPI_COMM_WORLD_RANK": "0",
    "PYTHONPATH": "/site/extra",
    "AWS_SECRET_ACCESS_KEY": "hunter2",
    "LD_PRELOAD": "/evil.so",
    "MY_TASK_VAR": "mine",
    "SIT_ROOT": "/sit",
    "LUTEX": "no prefix match",
    "path": "lowercase is another name",
}


def test_local_runtime_replaces_the_python_placeholder_only_where_it_is_a_whole_argument() -> None:
    spec = ProcessSpec(argv=(PYTHON, "-m", "lute_kernel.worker", f"{PYTHON}x", "python"))
    assert LocalRuntime().wrap(spec) == [sys.executable, "-m", "lute_kernel.worker", "{python}x", "python"]


def test_the_environment_is_an_allowlist() -> None:
    spec = ProcessSpec(
        argv=("x",),
        env={"PATH": "/spec/bin", "LUTE_TASK": "Test", "PYTHONUNBUFFERED": "1"},
        passthrough_env=("MY_TASK_VAR", "NOT_ON_HOST"),
    )
    env = LocalRuntime(env_allowlist=["SIT_*"]).environment(spec, HOST_ENV)
    assert env == {
        "PATH": "/spec/bin",  # spec.env wins over the host
        "HOME": "/home/me",
        "LC_ALL": "C.UTF-8",
        "LUTE_SITE": "local",
        "LUTE_X": "1",
        "SLURM_JOB_ID": "1234",
        "SLURM_NTASKS": "4",
        "OMPI_COMM_WORLD_RANK": "0",
        "MY_TASK_VAR": "mine",
        "SIT_ROOT": "/sit",
        "LUTE_TASK": "Test",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": f"{KERNEL_ROOT}:/site/extra",
    }


def test_a_host_variable_off_the_list_is_dropped() -> None:
    env = LocalRuntime().environment(ProcessSpec(argv=("x",)), HOST_ENV)
    for name in ("AWS_SECRET_ACCESS_KEY", "LD_PRELOAD", "MY_TASK_VAR", "SIT_ROOT", "LUTEX", "path"):
        assert name not in env


def test_pythonpath_starts_with_the_kernel_root() -> None:
    assert LocalRuntime().environment(ProcessSpec(argv=("x",)), {})["PYTHONPATH"] == KERNEL_ROOT
    spec = ProcessSpec(argv=("x",), env={"PYTHONPATH": "/from/spec"})
    assert LocalRuntime().environment(spec, HOST_ENV)["PYTHONPATH"] == f"{KERNEL_ROOT}:/from/spec"
    assert (Path(KERNEL_ROOT) / "lute_kernel" / "worker.py").is_file()


def test_allowed_env_matches_exact_names_and_star_prefixes_case_sensitively() -> None:
    host = {"A": "1", "AB": "2", "B_1": "3", "b_1": "4", "C": "5"}
    assert allowed_env(host, ["A", "B_*"]) == {"A": "1", "B_1": "3"}
    assert allowed_env(host, []) == {}


def test_task_allowlist_covers_mpi_and_slurm_but_not_host_paths() -> None:
    for pattern in ("LUTE_*", "SLURM_*", "PMI_*", "PMIX_*", "OMPI_*", "UCX_*"):
        assert pattern in TASK_ENV_ALLOWLIST
    for name in ("PATH", "HOME", "PYTHONPATH"):
        assert name in HOST_ENV_ALLOWLIST and name not in TASK_ENV_ALLOWLIST


def test_direct_launcher_leaves_argv_unchanged() -> None:
    argv = ["/usr/bin/python3", "-m", "lute_kernel.worker"]
    wrapped = DirectLauncher().wrap(argv, Resources())
    assert wrapped == argv
    assert wrapped is not argv
    assert DirectLauncher().wrap(("a", "b"), Resources(cpus_per_rank=8)) == ["a", "b"]


def test_direct_launcher_refuses_several_ranks() -> None:
    with pytest.raises(InputError) as info:
        DirectLauncher().check(Resources(ranks=4), LocalRuntime())
    assert str(info.value) == "launcher 'direct' starts one process; the Task asks for 4 ranks"
    assert info.value.exit_code == EXIT_BAD_INPUT
    DirectLauncher().check(Resources(ranks=1, gpus=1), LocalRuntime())


def test_build_plan_refuses_several_ranks_with_direct() -> None:
    spec = ProcessSpec(argv=(PYTHON, "-m", "lute_kernel.worker"), resources=Resources(ranks=2))
    with pytest.raises(InputError, match="the Task asks for 2 ranks"):
        build_plan(spec, LocalRuntime(), DirectLauncher(), {})


def test_make_runtime_and_make_launcher_unknown_names_list_the_available_ones() -> None:
    with pytest.raises(InputError) as info:
        make_runtime("docker")
    assert str(info.value) == "runtime 'docker' is not available here (available: apptainer, local)"
    with pytest.raises(InputError) as info:
        make_launcher("flux")
    assert str(info.value) == "launcher 'flux' is not available here (available: direct, mpirun, srun)"
    assert sorted(BUILTIN_RUNTIMES) == ["apptainer", "local"] and sorted(BUILTIN_LAUNCHERS) == [
        "direct",
        "mpirun",
        "srun",
    ]


def test_make_runtime_adds_the_site_allowlist() -> None:
    runtime = make_runtime("local", SiteProfile(name="t", env_allowlist=["SIT_*", "PS_*"]))
    assert isinstance(runtime, LocalRuntime)
    assert runtime.env_allowlist == [*TASK_ENV_ALLOWLIST, "SIT_*", "PS_*"]
    assert isinstance(make_launcher("direct"), DirectLauncher)


class RecordingRuntime(Runtime):
    name = "rec-runtime"
    capabilities = RuntimeCapabilities(supports_mpi=False)

    def __init__(self, calls: List[str]) -> None:
        super().__init__()
        self.calls = calls

    def wrap(self, spec: ProcessSpec) -> List[str]:
        self.calls.append("runtime.wrap")
        return ["container", "exec", *spec.argv]

    def environment(self, spec: ProcessSpec, host_env: Any) -> Dict[str, str]:
        self.calls.append("runtime.environment")
        return {"FROM": "runtime", **spec.env}

    def image_name(self, spec: ProcessSpec) -> Optional[str]:
        return spec.image

    def image_digest(self, spec: ProcessSpec) -> Optional[str]:
        return "sha256:abc"


class RecordingLauncher(Launcher):
    name = "rec-launcher"
    capabilities = LauncherCapabilities(multi_rank=True)

    def __init__(self, calls: List[str]) -> None:
        self.calls = calls

    def wrap(self, argv: Sequence[str], resources: Resources) -> List[str]:
        self.calls.append("launcher.wrap")
        return ["mpi", "-n", str(resources.ranks), *argv]

    def check(self, resources: Resources, runtime: Runtime) -> None:
        self.calls.append("launcher.check")
        super().check(resources, runtime)


def test_build_plan_composes_launcher_around_runtime() -> None:
    calls: List[str] = []
    spec = ProcessSpec(argv=("prog", "--x", "1"), env={"E": "1"}, cwd="/work", image="crystfel")
    plan = build_plan(spec, RecordingRuntime(calls), RecordingLauncher(calls), {"HOST": "h"})
    assert plan == LaunchPlan(
        argv=("mpi", "-n", "1", "container", "exec", "prog", "--x", "1"),
        env={"FROM": "runtime", "E": "1"},
        cwd="/work",
        runtime="rec-runtime",
        launcher="rec-launcher",
        image="crystfel",
        image_sha256="sha256:abc",
        task_env={"E": "1"},
    )
    assert calls == ["launcher.check", "runtime.wrap", "launcher.wrap", "runtime.environment"]


def test_a_runtime_without_mpi_cannot_take_several_ranks() -> None:
    calls: List[str] = []
    spec = ProcessSpec(argv=("prog",), resources=Resources(ranks=3))
    with pytest.raises(InputError) as info:
        build_plan(spec, RecordingRuntime(calls), RecordingLauncher(calls), {})
    assert str(info.value) == "runtime 'rec-runtime' cannot run MPI Tasks"
    assert calls == ["launcher.check"]  # nothing wrapped before the check


def test_local_direct_plan_for_a_worker() -> None:
    spec = ProcessSpec(argv=(PYTHON, "-m", "lute_kernel.worker"), env={"LUTE_TASK": "Test"}, cwd="/w")
    plan = build_plan(spec, LocalRuntime(), DirectLauncher(), {"PATH": "/bin", "SECRET": "x"})
    assert plan == LaunchPlan(
        argv=(sys.executable, "-m", "lute_kernel.worker"),
        env={"PATH": "/bin", "LUTE_TASK": "Test", "PYTHONPATH": KERNEL_ROOT},
        cwd="/w",
        runtime="local",
        launcher="direct",
        image=None,
        image_sha256=None,
        task_env={"LUTE_TASK": "Test"},
    )


@pytest.fixture
def prepare_with(monkeypatch: pytest.MonkeyPatch, make_config: Callable[..., Path]) -> Callable[..., api.PreparedRun]:
    monkeypatch.delenv("LUTE_SITE", raising=False)
    monkeypatch.delenv("LUTE_SITES_DIR", raising=False)
    registry = discover([REPO / "tasks"], entry_points=False)

    def prepare(task: str, sections: Dict[str, Any], host_env: Dict[str, str]) -> api.PreparedRun:
        return api.prepare(task, make_config(sections), registry=registry, host_env=host_env)

    return prepare


def test_prepare_plans_a_python_task_as_the_worker(
    prepare_with: Callable[..., api.PreparedRun], work_dir: Path
) -> None:
    prepared = prepare_with("Tester", {"Test": {"compound_var": {"int_var": 2}}}, {"PATH": "/bin", "SECRET": "s"})
    run_dir = prepared.plan.run_dir
    assert Path(run_dir).parent == Path(tempfile.gettempdir()) and Path(run_dir).name.startswith("lute-")
    assert not Path(run_dir).exists()  # planned only: the executor makes it
    assert prepared.plan == LaunchPlan(
        argv=(sys.executable, "-m", "lute_kernel.worker"),
        env={"PATH": "/bin", "LUTE_TASK": "Test", "PYTHONUNBUFFERED": "1", "PYTHONPATH": KERNEL_ROOT},
        cwd=str(work_dir),
        runtime="local",
        launcher="direct",
        run_dir=run_dir,
        ipc_endpoint=f"ipc://{run_dir}/s",
        task_env={"LUTE_TASK": "Test", "PYTHONUNBUFFERED": "1"},
    )
    assert prepared.request is not None
    assert {k: prepared.request[k] for k in ("task", "module", "class")} == {
        "task": "Test",
        "module": "test",
        "class": "Test",
    }
    assert prepared.request["tasks_dir"] == str((REPO / "tasks").resolve())
    assert prepared.request["params"]["compound_var"] == {"int_var": 2, "dict_var": {"a": "b"}}
    assert prepared.request["params"]["lute_config"]["work_dir"] == str(work_dir)


def test_prepare_plans_a_binary_task_as_its_argv(prepare_with: Callable[..., api.PreparedRun], work_dir: Path) -> None:
    prepared = prepare_with("BinaryTester", {"TestBinary": {"p_arg1": 3}}, {"PATH": "/bin"})
    assert prepared.plan.argv == (str(REPO / "tasks" / "bin" / "test_threads"), "3")
    assert prepared.plan.env == {"PATH": "/bin", "PYTHONPATH": KERNEL_ROOT}
    assert prepared.plan.cwd == str(work_dir)
    assert prepared.request is None
