"""MPI ranks as a Slurm job step: `lute-kernel run` inside an allocation launches with srun.

Marked ``slurm`` and ``mpi``: CI starts the one-node cluster (scripts/start-slurm.sh) before the
tests. Every command runs under ``timeout``. The allocation has one task more than the ranks (the
kernel keeps one, as upstream); ``--overcommit`` lets 3 tasks share the node's 2 CPUs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, List

import pytest
from conftest import REPO
from e2e import only_row, processes_marked, run_dirs, wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.slurm, pytest.mark.mpi]


@pytest.fixture
def env(cli_env: Dict[str, str], tmp_path: Path) -> Dict[str, str]:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    base = {k: v for k, v in cli_env.items() if not k.startswith("SLURM_")}
    return dict(base, TMPDIR=str(tmpdir), LUTE_TEST_MARKER=uuid.uuid4().hex)


def in_allocation(
    tasks: int, *args: str, env: Dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``lute-kernel ARGS`` inside ``salloc -n TASKS`` (bounded)."""
    argv: List[str] = ["timeout", str(int(timeout)), "salloc", "-n", str(tasks), "--overcommit", "--quiet"]
    argv += [sys.executable, "-m", "lute_kernel.cli", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout + 30)


def _no_leftovers(env: Dict[str, str]) -> None:
    assert run_dirs(Path(env["TMPDIR"])) == []
    left = [pid for pid in processes_marked(f"LUTE_TEST_MARKER={env['LUTE_TEST_MARKER']}\0") if not wait_gone(pid)]
    assert left == [], f"ranks left running: {left}"


@pytest.mark.parametrize("runtime", ["local", pytest.param("apptainer", marks=pytest.mark.apptainer)])
def test_srun_ranks_talk_to_the_kernel(
    make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str], runtime: str
) -> None:
    cfg = make_config({"MpiReport": {}}, task_timeout=120)
    result = in_allocation(3, "run", "MpiReport", "-c", str(cfg), "--runtime", runtime, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[1] INFO    rank 1 of 2" in result.stdout and "INFO    rank 0 of 2" in result.stdout
    row = only_row(work_dir, "MpiReport")
    assert row["result.summary"] == "size: 2;gathered: 2"  # from rank 0
    argv = json.loads(row["prov.argv"])
    assert row["prov.launcher"] == "srun" and argv[:4] == ["srun", "--mpi=pmi2", "-n", "2"]
    _no_leftovers(env)


def test_a_crashing_rank_under_srun_fails_the_task_without_a_hang(
    make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    cfg = make_config({"MpiRankCrash": {}}, task_timeout=120)
    started = time.monotonic()
    result = in_allocation(3, "run", "MpiRankCrash", "-c", str(cfg), "--runtime", "local", env=env)
    assert time.monotonic() - started < 90
    assert result.returncode == 1, result.stdout + result.stderr
    assert only_row(work_dir, "MpiRankCrash")["result.task_status"] == "FAILED"
    _no_leftovers(env)


def test_a_timeout_under_srun_kills_the_step(
    make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    cfg = make_config({"MpiReport": {"sleep_secs": 120}}, task_timeout=5)
    result = in_allocation(3, "run", "MpiReport", "-c", str(cfg), "--runtime", "local", env=env)
    assert result.returncode == 1 and "TIMEDOUT" in result.stdout, result.stdout + result.stderr
    assert only_row(work_dir, "MpiReport")["result.task_status"] == "TIMEDOUT"
    _no_leftovers(env)


def test_more_ranks_than_the_allocation_is_an_input_error(
    make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    cfg = make_config({"MpiReport": {}})
    result = in_allocation(2, "run", "MpiReport", "-c", str(cfg), "--ranks", "4", env=env)
    assert result.returncode == 2 and "do not fit the allocation" in result.stderr
    assert not (work_dir / "lute.db").exists()
