"""Helpers of the flow tests (imported by name: a module of the tests.workflows package)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
TEST_TASKS = REPO / "tests" / "tasks"
FLOW_TASKS = Path(__file__).parent / "tasks"
UPSTREAM = REPO.parent / "shared" / "upstream-configs"
PREFECT_ENV = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_UI_ENABLED": "false"}


def write_dag(path: Path, text: str) -> Path:
    """Write a DAG file (``text`` is dedented)."""
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def flow_cli(
    *args: str, env: Optional[Dict[str, str]] = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``lute-kernel flow ARGS`` as a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "lute_kernel.cli", "flow", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=REPO,
    )


def rows(work_dir: Path, table: str) -> List[Dict[str, Any]]:
    """Every row of a Task's table, oldest first ([] without a DB or table)."""
    path = work_dir / "lute.db"
    if not path.exists():
        return []
    con = sqlite3.connect(path)
    try:
        con.row_factory = sqlite3.Row
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if table not in names:
            return []
        return [dict(r) for r in con.execute(f'SELECT * FROM "{table}" ORDER BY id')]
    finally:
        con.close()


def statuses(work_dir: Path, table: str) -> List[str]:
    """The ``result.task_status`` of every row of a Task's table."""
    return [str(r["result.task_status"]) for r in rows(work_dir, table)]
