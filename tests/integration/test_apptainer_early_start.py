"""The early start with real containers: a repeated `run --runtime apptainer` adopts the container it started
before validation, and a kept launch that is not the plan leaves no container process behind.

Marked ``apptainer`` (CI installs Apptainer and builds the smoke image first).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
from conftest import run_cli
from e2e import isolated_env, processes_marked, run_dirs, smoke_sif, wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.apptainer]
__all__ = ["smoke_sif"]  # a fixture of e2e's, used here

EARLY = "early start: validated while it starts"
VOLATILE = ("id", "timestamp", "prov.start", "prov.end", "prov.pid", "prov.pid_start", "prov.argv")
SECTION = {"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}}}


@pytest.fixture
def env(cli_env: Dict[str, str], tmp_path: Path) -> Dict[str, str]:
    return isolated_env(cli_env, tmp_path / "tmp", XDG_CACHE_HOME=str(tmp_path / "cache"))


def _rows(work_dir: Path) -> List[Tuple[Any, ...]]:
    with sqlite3.connect(work_dir / "lute.db") as db:
        cursor = db.execute('SELECT * FROM "Test" ORDER BY id')
        keep = [i for i, d in enumerate(cursor.description) if d[0] not in VOLATILE]
        return [tuple(row[i] for i in keep) for row in cursor.fetchall()]


def _run(config: Path, env: Dict[str, str]) -> Any:
    done = run_cli("run", "Test", "-c", str(config), "--runtime", "apptainer", "--profile", env=env, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_a_repeated_container_run_adopts_the_container_it_started_early(
    smoke_sif: Dict[str, Any], make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    config = make_config(SECTION)
    first = _run(config, env)
    second = _run(config, env)
    assert EARLY not in first.stderr and EARLY in second.stderr
    assert "Test: COMPLETED" in second.stdout and "INFO    Test message 9" in second.stdout
    one, two = _rows(work_dir)
    assert one == two  # the same row: image digest, parameters, environment
    assert run_dirs(Path(env["TMPDIR"])) == []


def test_a_kept_container_launch_that_is_not_the_plan_leaves_no_container_behind(
    smoke_sif: Dict[str, Any], make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    config = make_config(SECTION)
    _run(config, env)
    (memo,) = (Path(env["XDG_CACHE_HOME"]) / "lute-kernel" / "launches").glob("*.json")
    mark = f"early-test-{uuid.uuid4().hex}"
    kept = json.loads(memo.read_text())
    argv = kept["launch"]["argv"]
    argv[argv.index("--pwd") : argv.index("--pwd")] = ["--env", f"LUTE_EARLY_MARK={mark}"]  # inside the container
    memo.write_text(json.dumps(kept))
    done = _run(config, env)
    assert EARLY not in done.stderr  # started, found different from the plan, killed
    left = [pid for pid in processes_marked(mark) if not wait_gone(pid)]
    assert left == [], f"processes of the discarded container: {left}"
    assert run_dirs(Path(env["TMPDIR"])) == []
    one, two = _rows(work_dir)
    assert one == two
    assert EARLY in _run(config, env).stderr  # the run kept its own launch
