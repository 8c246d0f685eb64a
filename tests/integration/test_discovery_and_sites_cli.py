"""The CLI with hostile Task folders and site profiles: recorded, reported, exit 2 — never a traceback.

A Task module that exits, raises BaseException or hangs at import must not break any command; a
module shadowing a built-in Task makes that name ambiguous (exit 2 naming both files); a broken site
profile named by path is exit 2 with one message naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict

import pytest
from conftest import REPO, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def hostile_tasks(tmp_path: Path, cli_env: Dict[str, str]) -> Dict[str, str]:
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "quits.py").write_text("import sys\nsys.exit(0)\n")
    (folder / "odd.py").write_text("raise BaseException('odd')\n")
    (folder / "hangs.py").write_text("import time\ntime.sleep(3600)\n")
    (folder / "shadow.py").write_text("from lute_kernel.task import Task\nclass Test(Task):\n    pass\n")
    env = dict(cli_env, LUTE_TASKS_PATH=str(folder), LUTE_TASK_IMPORT_TIMEOUT="1", COLUMNS="250")
    env["HOSTILE"] = str(folder)
    return env


def test_tasks_lists_everything_else_and_every_failure(hostile_tasks: Dict[str, str]) -> None:
    done = run_cli("tasks", env=hostile_tasks)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    out = " ".join(done.stdout.split())
    folder = hostile_tasks["HOSTILE"]
    assert f"{folder}/quits.py: SystemExit: the module called sys.exit(0) at import" in out
    assert f"{folder}/odd.py: BaseException: odd" in out
    assert f"{folder}/hangs.py: hung at import:" in out
    assert "Task name 'Test': claimed 2 times" in out and f"{folder}/shadow.py" in out
    assert "TestSocket" in out and "TestBinary" in out


def test_an_ambiguous_name_is_refused_naming_both_sources(
    hostile_tasks: Dict[str, str], make_config: Callable[..., Path], work_dir: Path
) -> None:
    cfg = make_config({"Test": {"compound_var": {"int_var": 1}}, "TestBinary": {"p_arg1": 1}})
    for task in ("Test", "Tester"):
        done = run_cli("run", task, "-c", str(cfg), env=hostile_tasks)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        assert f"{hostile_tasks['HOSTILE']}/shadow.py" in done.stderr and str(REPO / "tasks" / "test.py") in done.stderr
    assert not (work_dir / "lute.db").exists()
    assert run_cli("explain", "TestBinary", "-c", str(cfg), env=hostile_tasks).returncode == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list\n", "a site profile is a mapping of settings"),
        ("runtime: [local\n", "site profile is not valid YAML"),
        ("kill_grace_seconds: soon\n", "invalid site profile: kill_grace_seconds"),
        ("mpi:\n  srun_mpi_offerd: [pmi2]\n", "invalid site profile: mpi.srun_mpi_offerd: Extra inputs"),
    ],
)
def test_a_broken_site_file_is_exit_2_naming_it(
    tmp_path: Path, cli_env: Dict[str, str], make_config: Callable[..., Path], text: str, message: str
) -> None:
    site = tmp_path / "broken.yaml"
    site.write_text(text)
    cfg = make_config({"Test": {"compound_var": {"int_var": 1}}})
    for args in (
        ("explain", "Test", "-c", str(cfg)),
        ("images", "ls"),
        ("submit", "Test", "-c", str(cfg), "--dry-run"),
    ):
        done = run_cli(*args, "--site", str(site), env=cli_env)
        assert done.returncode == 2, (args, done.stdout + done.stderr)
        assert done.stderr.startswith(f"error: {site}") and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_a_site_file_by_path_runs(tmp_path: Path, cli_env: Dict[str, str], make_config: Callable[..., Path]) -> None:
    site = tmp_path / "mine.yaml"
    site.write_text("description: my own\nkill_grace_seconds: 2\n")
    cfg = make_config({"Test": {"compound_var": {"int_var": 1}, "sleep_secs": 0}})
    done = run_cli("run", "Test", "-c", str(cfg), "--site", str(site), env=cli_env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_site_file_by_path_is_what_the_job_and_the_row_name(
    tmp_path: Path, cli_env: Dict[str, str], make_config: Callable[..., Path], work_dir: Path
) -> None:
    import sqlite3

    site = tmp_path / "mine.yaml"
    site.write_text("slurm:\n  partition: debug\n")
    cfg = make_config({"Test": {"compound_var": {"int_var": 1}, "sleep_secs": 0}})
    script = run_cli("submit", "Test", "-c", str(cfg), "--site", str(site), "--dry-run", env=cli_env)
    assert script.returncode == 0, script.stdout + script.stderr
    assert f"--site {site}" in script.stdout
    assert run_cli("run", "Test", "-c", str(cfg), "--site", str(site), env=cli_env).returncode == 0
    with sqlite3.connect(work_dir / "lute.db") as db:
        (recorded,) = db.execute('SELECT "prov.site" FROM Test').fetchone()
    assert recorded == str(site)  # so `rerun` loads the same file
