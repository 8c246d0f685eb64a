"""Real upstream LUTE configuration files (reference data in ../shared, read when present, never copied)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict

import pytest
from conftest import UPSTREAM_CONFIGS, run_cli
from e2e import assert_no_leftovers, isolated_env, last_line, only_row, row_counts

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not UPSTREAM_CONFIGS.is_dir(), reason=f"no upstream configs at {UPSTREAM_CONFIGS}"),
]


def _upstream(name: str) -> Path:
    path = UPSTREAM_CONFIGS / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


def test_config_show_of_upstream_substitution_example(cli_env: Dict[str, str]) -> None:
    env = dict(cli_env, RUN="12", EXPERIMENT="TestYAMLSubs")
    result = run_cli("config", "show", "-c", str(_upstream("test_var_subs.yaml")), env=env)
    assert result.returncode == 0, result.stderr
    sections = json.loads(result.stdout)["sections"]
    assert sections["OtherTask"] == {"useful_other_var": "USE ME!"}
    assert sections["NonExistentTask"] == {
        "test_sub": "/path/to/TestYAMLSubs/file_r0012.input",
        "test_env_sub": "/path/to/TestYAMLSubs/file.input",
        "test_nested": {"a": "outfile_12_one.out", "b": {"c": "outfile_12_two.out", "d": "USE ME!"}},
        "test_fmt": "0012",
        "test_env_fmt": "0012",
    }


@pytest.fixture
def functional_config(tmp_path: Path, work_dir: Path) -> Path:
    """Upstream's functional basic_tests config, its work_dir (/tmp) pointed at this test's work_dir."""
    text = _upstream("functional_basic_tests_config.yaml").read_text()
    text, count = re.subn(r"(?m)^work_dir:.*$", f'work_dir: "{work_dir}"', text)
    assert count == 1
    path = tmp_path / "functional_basic_tests_config.yaml"
    path.write_text(text)
    return path


def test_upstream_functional_config_validates_and_a_missing_executable_fails_at_launch(
    functional_config: Path, work_dir: Path, cli_env: Dict[str, str], tmp_path: Path
) -> None:
    validated = run_cli("validate", "-c", str(functional_config), env=cli_env)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    for section in ("header", "Test", "TestBinary", "TestBinaryErr", "TestSocket"):
        assert f"ok  {section}" in validated.stdout.splitlines(), validated.stdout

    # Its TestBinary names a program on SLAC's file system: the path is only checked at launch.
    executable = "/sdf/home/d/dorlhiac/test_tasks/test_threads"
    assert executable in functional_config.read_text()
    if Path(executable).exists():
        pytest.skip(f"{executable} exists here")
    tmpdir = tmp_path / "t"
    result = run_cli("run", "TestBinary", "-c", str(functional_config), env=isolated_env(cli_env, tmpdir))
    assert result.returncode == 1, result.stdout + result.stderr
    assert last_line(result.stdout).startswith("TestBinary: FAILED in "), result.stdout
    row = only_row(work_dir, "TestBinary")
    assert row["result.task_status"] == "FAILED"
    assert row["valid_flag"] == 0
    assert "cannot start" in row["result.summary"] and executable in row["result.summary"]
    assert row["p_arg1"] == 4
    assert row_counts(work_dir)["TestBinary"] == 1
    assert_no_leftovers(tmpdir)
