"""The early start of a Slurm step: inside one allocation, a repeated `run` of an MPI Task starts its srun step
before validation and adopts it; a kept step that is not the plan is stopped, leaving no rank behind.

Marked ``slurm`` and ``mpi`` (CI starts the one-node cluster). Both runs of each test are in one
allocation (an early start of a step happens only inside the allocation it was kept in).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
from conftest import REPO
from e2e import processes_marked, run_dirs, wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.slurm, pytest.mark.mpi]

EARLY = "early start: validated while it starts"

DRIVER = r"""
import json, subprocess, sys
from pathlib import Path
config, cache, runtime, tamper = sys.argv[1:5]
argv = [sys.executable, "-m", "lute_kernel.cli", "run", "MpiReport", "-c", config, "--runtime", runtime, "--profile"]
first = subprocess.run(argv, capture_output=True, text=True)
if tamper == "yes":
    (memo,) = (Path(cache) / "lute-kernel" / "launches").glob("*.json")
    kept = json.loads(memo.read_text())
    kept["launch"]["env"]["LUTE_EARLY_MARK"] = "changed"  # the srun process's own environment: not the plan's
    memo.write_text(json.dumps(kept))
second = subprocess.run(argv, capture_output=True, text=True)
print(json.dumps([[r.returncode, r.stdout, r.stderr] for r in (first, second)]))
"""


def _rows(work_dir: Path) -> List[Tuple[Any, ...]]:
    volatile = ("id", "timestamp", "prov.start", "prov.end", "prov.pid", "prov.pid_start", "prov.argv")
    with sqlite3.connect(work_dir / "lute.db") as db:
        cursor = db.execute('SELECT * FROM "MpiReport" ORDER BY id')
        keep = [i for i, d in enumerate(cursor.description) if d[0] not in volatile]
        return [tuple(row[i] for i in keep) for row in cursor.fetchall()]


@pytest.mark.parametrize("tamper", [False, True], ids=["adopted", "not-the-plan"])
@pytest.mark.parametrize("runtime", ["local", pytest.param("apptainer", marks=pytest.mark.apptainer)])
def test_a_repeated_mpi_run_in_one_allocation_starts_its_step_early(
    tamper: bool,
    runtime: str,
    make_config: Callable[..., Path],
    work_dir: Path,
    cli_env: Dict[str, str],
    tmp_path: Path,
) -> None:
    cfg = make_config({"MpiReport": {}}, task_timeout=120)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    marker = uuid.uuid4().hex
    env = {k: v for k, v in cli_env.items() if not k.startswith("SLURM_")}
    env.update(TMPDIR=str(tmpdir), XDG_CACHE_HOME=str(tmp_path / "cache"), LUTE_TEST_MARKER=marker)
    argv = ["timeout", "300", "salloc", "-n", "3", "--overcommit", "--quiet", sys.executable, "-c", DRIVER]
    argv += [str(cfg), str(tmp_path / "cache"), runtime, "yes" if tamper else "no"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=330)
    assert done.returncode == 0, done.stdout + done.stderr
    (code1, out1, err1), (code2, out2, err2) = json.loads(done.stdout.splitlines()[-1])
    assert code1 == code2 == 0, out1 + err1 + out2 + err2
    assert EARLY not in err1
    assert (EARLY in err2) is not tamper, err2
    assert "INFO    rank 0 of 2" in out2 and "[1] INFO    rank 1 of 2" in out2
    one, two = _rows(work_dir)
    assert one == two
    assert run_dirs(tmpdir) == []
    left = [pid for pid in processes_marked(f"LUTE_TEST_MARKER={marker}\0") if not wait_gone(pid)]
    assert left == [], f"ranks left running: {left}"
