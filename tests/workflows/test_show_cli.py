"""``lute-kernel flow show|validate`` and the CLI's import discipline (no Prefect unless a flow runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict

import pytest

from workflows.flow_helpers import REPO, UPSTREAM, flow_cli

needs_upstream = pytest.mark.skipif(not UPSTREAM.is_dir(), reason="../shared/upstream-configs is not here")
pytestmark = pytest.mark.integration

BASIC_TREE = """\
functional_basic_tests_dag.yaml: 6 nodes, 6 runs; backend local
└── Tester → Test  [ALL_SUCCESS]
    │   slurm: --partition=milano --account=lcls:data --ntasks=1
    ├── BinaryTester → TestBinary  [ALL_SUCCESS]
    │       slurm: --partition=milano --account=lcls:data --ntasks=5
    ├── BinaryErrTester → TestBinaryErr  [ALL_SUCCESS]
    │       slurm: --partition=milano --account=lcls:data --ntasks=5
    └── SocketTester → TestSocket  [ALL_SUCCESS]
        │   slurm: --partition=milano --account=lcls:data --ntasks=1
        └── WriteTester → TestWriteOutput  [ALL_SUCCESS]
            │   slurm: --partition=milano --account=lcls:data --ntasks=1
            └── ReadTester → TestReadOutput  [ALL_SUCCESS]
                    slurm: --partition=milano --account=lcls:data --ntasks=1
"""


@needs_upstream
def test_show_draws_the_basic_tests_dag_exactly(tasks_env: Dict[str, str]) -> None:
    result = flow_cli("show", str(UPSTREAM / "functional_basic_tests_dag.yaml"), env=tasks_env)
    assert (result.returncode, result.stdout) == (0, BASIC_TREE), result.stderr


@needs_upstream
def test_show_draws_every_upstream_dag(tasks_env: Dict[str, str]) -> None:
    sweep = flow_cli("show", str(UPSTREAM / "functional_param_generation_dag.yaml"), env=tasks_env)
    assert sweep.returncode == 0, sweep.stderr
    assert "SocketTester → TestSocket  [ALL_SUCCESS; !param_sweep: 4 runs, children wait for all]" in sweep.stdout
    assert [line.split()[-1] for line in sweep.stdout.splitlines() if "SocketTester_" in line] == [
        "num_arrays=5",
        "num_arrays=10",
        "num_arrays=15",
        "num_arrays=20",
    ]
    sfx = flow_cli("show", str(UPSTREAM / "functional_sfx_crystfel_dag.yaml"), "--backend", "slurm", env=tasks_env)
    assert sfx.returncode == 0, sfx.stderr
    assert "backend slurm" in sfx.stdout.splitlines()[0]
    assert "PeakFinderSFX → FindPeaksSFX  [ALL_SUCCESS]" in sfx.stdout  # every SFX Task ships now
    assert "slurm: --account=lcls:data --partition=milano --nodes=1 --ntasks-per-node=73 --exclusive" in sfx.stdout


@needs_upstream
def test_show_with_a_config_prints_each_steps_command(tasks_env: Dict[str, str], work_dir: Path) -> None:
    env = {**tasks_env, "LUTE_WORK_DIR": str(work_dir), "LUTE_REPO": str(REPO)}
    config = REPO / "config" / "examples" / "test.yaml"
    result = flow_cli("show", str(UPSTREAM / "functional_basic_tests_dag.yaml"), "-c", str(config), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"$ lute-kernel run TestWriteOutput -c {config} --site local" in result.stdout
    assert "runs: " in result.stdout and f"{REPO}/tasks/bin/test_threads 4" in result.stdout
    assert "deferred: in_file (from TestWriteOutput's row), resolved when it starts" in result.stdout
    slurm = flow_cli(
        "show", str(UPSTREAM / "functional_param_generation_dag.yaml"), "-c", str(config), "-b", "slurm", env=env
    )
    assert slurm.returncode == 0, slurm.stderr
    command = f"$ lute-kernel submit TestSocket -c '{work_dir}/.lute/flows/<flow run>/SocketTester_3.yaml' --site local"
    assert command in slurm.stdout
    assert (
        "--wait --cancel-on-exit -- --partition=milano --account=lcls:data --ntasks=1 --partition=debug" in slurm.stdout
    )
    assert not (work_dir / "lute.db").exists() and not (work_dir / ".lute").exists()


def test_show_draws_branch_points_and_the_options_this_run_takes(
    tasks_env: Dict[str, str], dag_file: Callable[[str], Path]
) -> None:
    dag = dag_file(
        "!LUTE_DAG\ntask_name: Tester\nnext:\n- !run_type\n  DARK: {task_name: SocketTester}\n"
        "  NOT_DARK: [{task_name: WriteTester, retries: 2}]\n- !branch_daq2\n  daq2: {task_name: BinaryTester}\n"
        "  daq1: {task_name: BinaryErrTester}\n"
    )
    result = flow_cli("show", str(dag), "--run-type", "DATA", env=tasks_env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("5 nodes, 5 runs; backend local")
    assert "    ├── !run_type  (run type DATA)" in lines
    assert "    │   ├── [DARK]  not taken" in lines and "    │   └── [NOT_DARK]  runs" in lines
    assert "    │       └── WriteTester → TestWriteOutput  [ALL_SUCCESS; retries 2]" in lines
    assert "    └── !branch_daq2  (DAQ given at run time)" in lines


def test_show_with_problems_exits_2_and_draws_them(
    tasks_env: Dict[str, str], dag_file: Callable[[str], Path], flow_config: Callable[..., Path]
) -> None:
    dag = dag_file("!LUTE_DAG\ntask_name: Tester\nnext:\n- task_name: ReadTester\n")
    result = flow_cli("show", str(dag), "-c", str(flow_config()), env=tasks_env)
    assert result.returncode == 2
    assert "error: " in result.stdout and "TestReadOutput.in_file: no in_file given" in result.stdout


def test_validate_says_what_is_deferred_and_refuses_bad_input(
    tasks_env: Dict[str, str], dag_file: Callable[[str], Path], flow_config: Callable[..., Path], work_dir: Path
) -> None:
    dag = dag_file("!LUTE_DAG\ntask_name: WriteTester\nnext:\n- task_name: ReadTester\n")
    ok = flow_cli("validate", str(dag), "-c", str(flow_config()), env=tasks_env)
    assert ok.returncode == 0, ok.stderr
    assert (
        ok.stdout.splitlines()[1]
        == "  deferred: ReadTester: in_file (from TestWriteOutput's row), resolved when it starts"
    )
    bad = flow_cli("validate", str(dag), "-c", str(flow_config(drop=("TestWriteOutput",))), env=tasks_env)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "WriteTester: the config has no section 'TestWriteOutput'" in bad.stderr
    not_yaml = dag_file("!LUTE_DAG\ntask_name: [")
    result = flow_cli("validate", str(not_yaml), "-c", str(flow_config()), env=tasks_env)
    assert result.returncode == 2 and f"error: {not_yaml}:2: not valid YAML" in result.stderr
    assert not (work_dir / "lute.db").exists()


def test_help_and_show_never_import_prefect(tasks_env: Dict[str, str]) -> None:
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from lute_kernel.cli import app\n"
        "for args in (['--help'], ['run', '--help'], ['flow', '--help'], ['flow', 'run', '--help'],"
        f" ['flow', 'show', {str(REPO / 'tests' / 'flows' / 'no_such.yaml')!r}]):\n"
        "    CliRunner().invoke(app, args)\n"
        "print('prefect' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=tasks_env, cwd=REPO)
    assert done.stdout.strip() == "False", done.stderr
