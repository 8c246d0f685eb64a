"""Provenance is enough to run any recorded row again: `lute-kernel rerun TASK ID -w DIR`."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable, Dict

import pytest
from conftest import run_cli

pytestmark = pytest.mark.integration


def test_a_row_runs_again_with_its_recorded_config_site_and_launch(
    make_config: Callable[..., Path], work_dir: Path, cli_env: Dict[str, str], tmp_path: Path
) -> None:
    cfg = make_config({"Test": {"compound_var": {"int_var": 3}, "sleep_secs": 0}})
    first = run_cli("run", "Tester", "-c", str(cfg), env=cli_env)
    assert first.returncode == 0, first.stderr
    again = run_cli("rerun", "Test", "1", "-w", str(work_dir), env=cli_env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"running Test row 1 again from {cfg.resolve()}" in again.stdout
    with sqlite3.connect(work_dir / "lute.db") as db:
        rows = db.execute(
            'SELECT "compound_var.int_var", "prov.config", "prov.site", "prov.runtime", "prov.ranks" FROM Test'
        ).fetchall()
    assert rows == [(3, str(cfg.resolve()), "local", "local", 1)] * 2


def test_an_unknown_row_is_an_input_error(
    work_dir: Path, cli_env: Dict[str, str], make_config: Callable[..., Path]
) -> None:
    run_cli(
        "run",
        "Tester",
        "-c",
        str(make_config({"Test": {"compound_var": {"int_var": 1}, "sleep_secs": 0}})),
        env=cli_env,
    )
    result = run_cli("rerun", "Test", "99", "-w", str(work_dir), env=cli_env)
    assert result.returncode == 2 and "no row 99" in result.stderr
