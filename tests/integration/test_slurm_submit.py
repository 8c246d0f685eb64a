"""``lute-kernel submit`` against the real one-node Slurm cluster (scripts/start-slurm.sh).

Marked ``slurm``: CI starts the cluster first (``.ci/run``); the session fixture runs the same
idempotent script (a no-op check when the cluster is up). The cluster has 2 CPUs, so the tests
run one 2-task job at a time. Every Slurm command is bounded by a timeout.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path
from typing import Callable, Dict, List

import pytest
import yaml
from conftest import REPO, run_cli
from e2e import TEST_BIN, LiveRun, assert_no_leftovers, isolated_env, only_row, processes_marked, wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.slurm]

TEST = {"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}}}


def _slurm(*argv: str, timeout: float = 30) -> str:
    done = subprocess.run(["timeout", str(timeout), *argv], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Start (or check) the one-node cluster."""
    done = subprocess.run(
        ["timeout", "600", "bash", str(REPO / "scripts" / "start-slurm.sh")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def _jobs_writing_to(folder: Path) -> List[str]:
    """Return the ids of the jobs slurmctld knows (for MinJobAge after they end) whose output is in ``folder``."""
    jobs = _slurm("scontrol", "show", "jobs", "--oneliner").splitlines()
    return [line.split()[0] for line in jobs if f"StdOut={folder}" in line]


@pytest.fixture
def env(slurm_cluster: None, cli_env: Dict[str, str], tmp_path: Path) -> Dict[str, str]:
    """The CLI's environment; sbatch exports it to the job, so the marker tags the job's processes too."""
    return isolated_env(cli_env, tmp_path / "tmp", LUTE_TEST_MARKER=uuid.uuid4().hex)


def _job_id(stdout: str) -> str:
    match = re.search(r"^submitted \S+ as Slurm job (\d+); output ", stdout, re.MULTILINE)
    assert match, stdout
    return match.group(1)


def _nothing_left(env: Dict[str, str]) -> None:
    assert_no_leftovers(Path(env["TMPDIR"]))
    marker = f"LUTE_TEST_MARKER={env['LUTE_TEST_MARKER']}\0"
    assert [pid for pid in processes_marked(marker) if not wait_gone(pid, 30)] == []


def test_submit_wait_completes_and_records(
    make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    cfg = make_config(TEST)
    result = run_cli("submit", "Test", "-c", str(cfg), "--wait", env=env, timeout=120)
    assert result.returncode == 0, (result.stdout, result.stderr)
    job = _job_id(result.stdout)
    output = work_dir / ".lute" / "slurm" / f"Test-{job}.out"
    assert f"slurm: job {job} ended COMPLETED (exit code 0); output {output}" in result.stdout
    assert "INFO    Test message 9" in result.stdout  # the job's output, streamed
    assert "Test: COMPLETED in " in output.read_text()
    assert _jobs_writing_to(work_dir) == [f"JobId={job}"]
    row = only_row(work_dir, "Test")
    assert (row["result.task_status"], row["valid_flag"]) == ("COMPLETED", 1)
    (script,) = (work_dir / ".lute" / "slurm").glob("Test-*.sbatch")
    assert script.read_text().splitlines()[1:3] == ["#SBATCH --job-name=Test", "#SBATCH --ntasks=2"]
    _nothing_left(env)


def test_a_failing_task_fails_the_job(make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]) -> None:
    cfg = make_config({"TestBinaryErr": {"executable": str(TEST_BIN / "test_threads_err"), "p_arg1": 2}})
    result = run_cli("submit", "TestBinaryErr", "-c", str(cfg), "--wait", env=env, timeout=120)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"slurm: job {_job_id(result.stdout)} ended FAILED (exit code 1" in result.stdout
    assert "test_threads_err: simulated failure after threads finished" in result.stdout
    row = only_row(work_dir, "TestBinaryErr")
    assert (row["result.task_status"], row["valid_flag"]) == ("FAILED", 0)
    _nothing_left(env)


def test_dry_run_and_bad_input_submit_nothing(
    make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    dry = run_cli("submit", "Test", "-c", str(make_config(TEST)), "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("#!/bin/bash\n#SBATCH --job-name=Test\n")
    bad = run_cli("submit", "Test", "-c", str(make_config({"Test": {"sleep_secs": 0}})), env=env)
    assert bad.returncode == 2 and "compound_var" in bad.stderr
    too_big = run_cli("submit", "Test", "-c", str(make_config(TEST)), "--ntasks", "64", env=env)
    assert too_big.returncode == 1
    assert "error: sbatch rejected the job: sbatch: error: Batch job submission failed:" in too_big.stderr
    assert _jobs_writing_to(work_dir) == []
    assert not (work_dir / "lute.db").exists()


def test_scancel_ends_the_task_cancelled(make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]) -> None:
    cfg = make_config({"FaultSleep": {"seconds": 60, "spawn_child": True}})
    with LiveRun("submit", "FaultSleep", "-c", str(cfg), "--wait", env=env) as live:
        job = _job_id(live.wait_for("as Slurm job", timeout=30))
        child = int(live.wait_for("child pid", timeout=60).split()[-1])
        live.wait_for("sleeping", timeout=30)
        _slurm("scancel", job)
        code, stdout, stderr = live.finish(timeout=90)
    assert code == 1, (stdout, stderr)
    assert f"slurm: job {job} ended CANCELLED" in stdout
    assert "lute-kernel: cancelled by SIGTERM" in stdout  # Slurm's SIGTERM reached the kernel, which forwarded it
    row = only_row(work_dir, "FaultSleep")
    assert (row["result.task_status"], row["valid_flag"]) == ("CANCELLED", 0)
    assert wait_gone(child, 30), "the Task's child outlived the job"
    _nothing_left(env)


@pytest.fixture
def overcommit_env(env: Dict[str, str], tmp_path: Path) -> Dict[str, str]:
    """``env`` with a local site whose jobs may overcommit: 2 ranks + the kernel's task on 2 CPUs."""
    sites = tmp_path / "sites"
    sites.mkdir()
    profile = yaml.safe_load((REPO / "config" / "sites" / "local.yaml").read_text())
    profile.setdefault("slurm", {})["extra_args"] = ["--overcommit"]
    (sites / "local.yaml").write_text(yaml.safe_dump(profile))
    return {**env, "LUTE_SITES_DIR": str(sites)}


@pytest.mark.mpi
@pytest.mark.apptainer
def test_an_mpi_task_runs_its_ranks_in_the_allocation(
    make_config: Callable[..., Path], work_dir: Path, overcommit_env: Dict[str, str]
) -> None:
    cfg = make_config({"TestMultiNodeCommunication": {"send_obj": "array", "arr_size": 3}})
    args = ("submit", "TestMultiNodeCommunication", "-c", str(cfg), "--runtime", "apptainer", "--wait")
    result = run_cli(*args, env=overcommit_env, timeout=180)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "#SBATCH --ntasks=3" in next((work_dir / ".lute" / "slurm").glob("*.sbatch")).read_text()
    assert "[1] INFO    rank 1 of 2 on host" in result.stdout
    row = only_row(work_dir, "TestMultiNodeCommunication")
    assert row["result.task_status"] == "COMPLETED", row["result.summary"]
    assert row["prov.launcher"] == "srun"
    _nothing_left(overcommit_env)


@pytest.mark.mpi
@pytest.mark.apptainer
def test_scancel_of_an_mpi_job_ends_it_cancelled(
    make_config: Callable[..., Path], work_dir: Path, overcommit_env: Dict[str, str]
) -> None:
    cfg = make_config({"MpiReport": {"sleep_secs": 60}})
    with LiveRun("submit", "MpiReport", "-c", str(cfg), "--runtime", "apptainer", "--wait", env=overcommit_env) as live:
        job = _job_id(live.wait_for("as Slurm job", timeout=30))
        for _ in range(2):  # both ranks, in either order
            live.wait_for("sleeping", timeout=90)
        _slurm("scancel", job)
        code, stdout, stderr = live.finish(timeout=90)
    assert code == 1, (stdout, stderr)
    assert f"slurm: job {job} ended CANCELLED" in stdout
    _nothing_left(overcommit_env)
    row = only_row(work_dir, "MpiReport")
    assert row["result.task_status"] == "CANCELLED", row["result.summary"]
