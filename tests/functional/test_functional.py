"""Functional cases as data (upstream LUTE's layout): ``tests/functional/<case>/{config.yaml, expect.json}``.

Each case's config names ``work_dir: "{{ $LUTE_WORK_DIR }}"`` and finds the test programs through
``{{ $LUTE_REPO }}``; this test sets both, runs the ``runs`` of ``expect.json`` in order with the CLI,
and checks each exit code, final status and summary, then the database and files the case expects.

``expect.json``::

    {
      "env":    {"VAR": "value"},                       optional, added to the CLI's environment
      "runs":   [{"task": "Tester", "exit": 0,          CLI exit code (2: bad input, no row written)
                  "status": "COMPLETED",                final status (also the row's result.task_status)
                  "summary": "text", "stderr": "text"}], substrings of result.summary / stderr (optional)
      "rows":   {"Test": 1},                            rows per Task table (0: table absent or empty)
      "valid":  {"Test": 1},                            valid rows per Task table (optional)
      "files":  ["test_output.txt"],                    must exist under work_dir (optional)
      "latest": {"Test": {"column": value}}             newest row's values; {work_dir} and {repo} expand
    }
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import REPO, run_cli

pytestmark = pytest.mark.integration

CASES_DIR = Path(__file__).resolve().parent
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "config.yaml").is_file() and (p / "expect.json").is_file())
FINAL_LINE = re.compile(r"^(\w+): (\w+) in ")


def _rows(db: Path, table: str) -> List[Dict[str, Any]]:
    if not db.exists():
        return []
    con = sqlite3.connect(db)
    try:
        con.row_factory = sqlite3.Row
        if not con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone():
            return []
        return [dict(row) for row in con.execute(f'SELECT * FROM "{table}" ORDER BY id')]
    finally:
        con.close()


def _expand(value: Any, work_dir: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{work_dir}", str(work_dir)).replace("{repo}", str(REPO))
    return value


def test_cases_are_present() -> None:
    assert {"basic_tests", "failures"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_functional_case(case: str, tmp_path: Path, cli_env: Dict[str, str]) -> None:
    case_dir = CASES_DIR / case
    expect = json.loads((case_dir / "expect.json").read_text())
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    run_root = tmp_path / "t"
    run_root.mkdir()
    env = dict(cli_env, LUTE_WORK_DIR=str(work_dir), LUTE_REPO=str(REPO), TMPDIR=str(run_root))
    env.update(expect.get("env", {}))
    db = work_dir / "lute.db"

    statuses: Dict[str, List[str]] = {}
    for run in expect["runs"]:
        result = run_cli("run", run["task"], "-c", str(case_dir / "config.yaml"), env=env)
        where = f"{case}: run {run['task']}\n{result.stdout}\n{result.stderr}"
        assert result.returncode == run["exit"], where
        assert run.get("stderr", "") in result.stderr, where
        if run["exit"] == 2:
            assert result.stdout == "", where
            continue
        match = FINAL_LINE.match(result.stdout.strip().splitlines()[-1])
        assert match and match.group(2) == run["status"], where
        task = match.group(1)
        statuses.setdefault(task, []).append(run["status"])
        row = _rows(db, task)[-1]
        assert row["result.task_status"] == run["status"], where
        assert row["valid_flag"] == (1 if run["status"] == "COMPLETED" else 0), where
        assert run.get("summary", "") in row["result.summary"], where

    for task, count in expect["rows"].items():
        assert len(_rows(db, task)) == count, f"{case}: rows of {task}"
    for task, recorded in statuses.items():
        assert [row["result.task_status"] for row in _rows(db, task)] == recorded, f"{case}: {task}"
    for task, count in expect.get("valid", {}).items():
        assert sum(row["valid_flag"] for row in _rows(db, task)) == count, f"{case}: valid rows of {task}"
    for name in expect.get("files", []):
        assert (work_dir / name).is_file(), f"{case}: {name} not written"
    for task, columns in expect.get("latest", {}).items():
        row = _rows(db, task)[-1]
        for column, value in columns.items():
            assert row[column] == _expand(value, work_dir), f"{case}: {task}.{column}"
    assert sorted(p.name for p in run_root.glob("lute-*")) == [], f"{case}: run directories left behind"
