"""``flow run --backend slurm`` on the one-node cluster (scripts/start-slurm.sh): one job per step.

The local site profile sends every step to partition ``debug`` with ``--overcommit`` (2 CPUs here),
after the DAG's own ``slurm_params`` — which name S3DF's ``milano`` partition, as upstream writes them.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Callable, Dict

import pytest
from e2e import LiveRun, assert_no_leftovers, processes_marked, wait_gone

from workflows.flow_helpers import REPO, rows, statuses

pytestmark = [pytest.mark.integration, pytest.mark.prefect, pytest.mark.slurm]


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    done = subprocess.run(
        ["timeout", "600", "bash", str(REPO / "scripts" / "start-slurm.sh")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def slurm_env(slurm_cluster: None, flow_env: Dict[str, str]) -> Dict[str, str]:
    """sbatch exports the environment to the job: the marker tags the job's processes too."""
    return {**flow_env, "LUTE_TEST_MARKER": uuid.uuid4().hex}


def _jobs(marker_dir: Path) -> str:
    done = subprocess.run(["timeout", "30", "squeue", "-h", "-o", "%i %o"], capture_output=True, text=True)
    return "\n".join(line for line in done.stdout.splitlines() if str(marker_dir) in line)


def _nothing_left(env: Dict[str, str], work_dir: Path) -> None:
    assert_no_leftovers(Path(env["TMPDIR"]))
    marker = f"LUTE_TEST_MARKER={env['LUTE_TEST_MARKER']}\0"
    assert [pid for pid in processes_marked(marker) if not wait_gone(pid, 30)] == []
    assert _jobs(work_dir) == ""


MPI_DAG = """\
!LUTE_DAG
task_name: Tester
slurm_params: "--partition=milano --account=lcls:data --ntasks=1"
next:
- task_name: MultiNodeCommunicationTester
  slurm_params: "--partition=milano --account=lcls:data --ntasks=4"
"""


@pytest.mark.mpi
@pytest.mark.apptainer
def test_an_mpi_step_runs_on_its_jobs_tasks_minus_the_kernels(
    slurm_env: Dict[str, str], dag_file: Callable[[str], Path], flow_config: Callable[..., Path], work_dir: Path
) -> None:
    config = flow_config({"TestMultiNodeCommunication": {"send_obj": "array", "arr_size": 3}})
    live = LiveRun(
        "flow", "run", str(dag_file(MPI_DAG)), "-c", str(config), "-b", "slurm", "--runtime", "apptainer", env=slurm_env
    )
    with live:
        code, stdout, stderr = live.finish(timeout=300)
    assert code == 0, stdout + stderr
    (row,) = rows(work_dir, "TestMultiNodeCommunication")
    assert (row["result.task_status"], row["prov.ranks"], row["prov.launcher"]) == ("COMPLETED", 3, "srun")
    assert "[MultiNodeCommunicationTester] INFO    [2] rank 2 of 3 on host" in stdout
    scripts = sorted((work_dir / ".lute" / "slurm").glob("TestMultiNodeCommunication-*.sbatch"))
    assert "#SBATCH --ntasks=4\n" in scripts[0].read_text()
    assert "--partition=milano --account=lcls:data --ntasks=4 --partition=debug --overcommit" in scripts[0].read_text()
    assert statuses(work_dir, "Test") == ["COMPLETED"]
    _nothing_left(slurm_env, work_dir)


def test_cancelling_a_slurm_flow_scancels_its_job(
    slurm_env: Dict[str, str], dag_file: Callable[[str], Path], flow_config: Callable[..., Path], work_dir: Path
) -> None:
    config = flow_config({"FaultSleep": {"seconds": 120, "spawn_child": True}})
    dag = dag_file("!LUTE_DAG\ntask_name: FaultSleep\nnext:\n- task_name: Tester\n")
    with LiveRun("flow", "run", str(dag), "-c", str(config), "-b", "slurm", env=slurm_env) as live:
        live.wait_for("sleeping", timeout=180)
        live.proc.terminate()
        code, stdout, stderr = live.finish(timeout=180)
    assert code == 1, stdout + stderr
    assert "slurm: SIGTERM received: cancelling job" in stdout
    assert statuses(work_dir, "FaultSleep") == ["CANCELLED"]
    assert rows(work_dir, "Test") == []
    _nothing_left(slurm_env, work_dir)
