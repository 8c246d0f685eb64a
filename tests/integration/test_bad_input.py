"""Bad input gets one readable message naming the problem, exit code 2, nothing launched, nothing written."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest
from conftest import run_cli
from e2e import isolated_env, row_counts, run_dirs

from lute_kernel.db import RunRecord, record_run

pytestmark = pytest.mark.integration

HEADER = """\
%YAML 1.3
---
title: "bad input"
experiment: "xpptut15"
run: 14
date: "2026/11/22"
lute_version: 0.1
task_timeout: 60
work_dir: "{work_dir}"
...
---
"""

GOOD_TEST = """\
Test:
  compound_var:
    int_var: 1
...
"""


@dataclass
class Case:
    """One kind of bad input: how to make the config, which Task to run, what the message must say."""

    name: str
    make: Callable[[Path, Path], Path]
    """(tmp folder, work_dir) -> path given to ``-c``."""
    expected: Tuple[str, ...]
    """Substrings of the message; ``{line}`` is replaced by the line of ``marker`` in the file."""
    task: str = "Test"
    marker: Optional[str] = None


def _write(tmp: Path, text: str) -> Path:
    path = tmp / "config.yaml"
    path.write_text(text)
    return path


def _config(body: str, work_dir_text: Optional[str] = None) -> Callable[[Path, Path], Path]:
    def make(tmp: Path, work_dir: Path) -> Path:
        return _write(tmp, HEADER.format(work_dir=work_dir_text or work_dir) + body)

    return make


def _no_work_dir(tmp: Path, work_dir: Path) -> Path:
    text = HEADER.format(work_dir=work_dir)
    return _write(tmp, "".join(line for line in text.splitlines(True) if not line.startswith("work_dir")) + GOOD_TEST)


def _work_dir_is_file(tmp: Path, work_dir: Path) -> Path:
    (tmp / "a_file").write_text("not a folder\n")
    return _write(tmp, HEADER.format(work_dir=tmp / "a_file") + GOOD_TEST)


def _not_utf8(tmp: Path, work_dir: Path) -> Path:
    path = tmp / "config.yaml"
    path.write_bytes(HEADER.format(work_dir=work_dir).encode() + b"Test:\n  str_var: \xff\xfe\n")
    return path


CASES: List[Case] = [
    Case("missing-config", lambda tmp, _w: tmp / "nowhere.yaml", ("nowhere.yaml", "not found")),
    Case("config-is-a-directory", lambda tmp, _w: tmp, ("directory",)),
    Case("config-not-utf8", _not_utf8, ("config.yaml", "UTF-8")),
    Case(
        "invalid-yaml",
        _config("Test:\n  compound_var:\n    int_var: 1\n  str_var: a: b\n...\n"),
        ("not valid YAML", "config.yaml:{line}"),
        marker="str_var: a: b",
    ),
    Case("header-missing-work-dir", _no_work_dir, ("work_dir", "required")),
    Case("work-dir-missing", _config(GOOD_TEST, "/nonexistent/lute"), ("'/nonexistent/lute'", "does not exist")),
    Case("work-dir-is-a-file", _work_dir_is_file, ("a_file", "not a directory")),
    Case("unknown-task", _config(GOOD_TEST), ("unknown Task 'Tset'", "Did you mean", "Test"), task="Tset"),
    Case(
        "wrong-type",
        _config('Test:\n  float_var: "abc"\n  compound_var:\n    int_var: 1\n...\n'),
        ("float_var (line {line})", "number", "'abc'"),
        marker='float_var: "abc"',
    ),
    Case(
        "missing-required-parameter",
        _config("Test:\n  float_var: 1.5\n...\n"),
        ("compound_var", "required parameter is missing"),
    ),
    Case(
        "unknown-parameter",
        _config("Test:\n  bogus: 1\n  compound_var:\n    int_var: 1\n...\n"),
        ("bogus (line {line})", "unknown parameter"),
        marker="bogus: 1",
    ),
    Case(
        "undefined-substitution",
        _config('Test:\n  str_var: "{{ nope }}"\n  compound_var:\n    int_var: 1\n...\n'),
        ("config.yaml:{line}", "Test.str_var", "undefined", "'nope'"),
        marker="{{ nope }}",
    ),
    Case(
        "undefined-env-substitution",
        _config('Test:\n  str_var: "{{ $LUTE_E2E_UNSET_VAR }}"\n  compound_var:\n    int_var: 1\n...\n'),
        ("config.yaml:{line}", "LUTE_E2E_UNSET_VAR", "not set"),
        marker="LUTE_E2E_UNSET_VAR",
    ),
    Case(
        "substitution-cycle",
        _config('Test:\n  str_var: "{{ Test.float_var }}"\n  float_var: "{{ str_var }}"\n  compound_var: {}\n...\n'),
        ("cycle", "Test.str_var", "Test.float_var"),
    ),
]


def _line_of(path: Path, marker: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if marker in line:
            return number
    raise AssertionError(f"{marker!r} not in {path}")


def _assert_bad_input(result: subprocess.CompletedProcess[str], expected: Tuple[str, ...]) -> None:
    out, err, code = result.stdout, result.stderr, result.returncode
    assert code == 2, (out, err)
    assert out == "", out
    assert err.startswith("error: ") and err.count("error:") == 1, err
    assert "Traceback" not in err, err
    for text in expected:
        assert text in err, f"{text!r} not in {err!r}"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_exits_2_launches_nothing_writes_nothing(
    case: Case, tmp_path: Path, work_dir: Path, cli_env: Dict[str, str]
) -> None:
    config = case.make(tmp_path, work_dir)
    expected = case.expected
    if case.marker:
        line = _line_of(config, case.marker)
        expected = tuple(text.replace("{line}", str(line)) for text in expected)
    tmpdir = tmp_path / "t"
    result = run_cli("run", case.task, "-c", str(config), env=isolated_env(cli_env, tmpdir))
    _assert_bad_input(result, expected)
    assert not (work_dir / "lute.db").exists()
    assert run_dirs(tmpdir) == [], "a run directory was made: something was launched"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_config_is_bad_input(tmp_path: Path, work_dir: Path, cli_env: Dict[str, str]) -> None:
    config = _config(GOOD_TEST)(tmp_path, work_dir)
    config.chmod(0)
    result = run_cli("run", "Test", "-c", str(config), env=isolated_env(cli_env, tmp_path / "t"))
    _assert_bad_input(result, ("config.yaml", "permission denied"))
    assert not (work_dir / "lute.db").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_work_dir_is_bad_input(tmp_path: Path, work_dir: Path, cli_env: Dict[str, str]) -> None:
    config = _config(GOOD_TEST)(tmp_path, work_dir)
    work_dir.chmod(0o500)
    try:
        result = run_cli("run", "Test", "-c", str(config), env=isolated_env(cli_env, tmp_path / "t"))
    finally:
        work_dir.chmod(0o700)
    _assert_bad_input(result, ("work_dir", "not writable"))
    assert not (work_dir / "lute.db").exists()


def test_run_needs_only_its_own_section(tmp_path: Path, work_dir: Path, cli_env: Dict[str, str]) -> None:
    broken_elsewhere = (
        "Test:\n  compound_var:\n    int_var: 1\n  sleep_secs: 0\n"
        'NotOurTask:\n  path: "{{ $LUTE_E2E_UNSET_VAR }}/{{ nope }}"\n'
        'TestSocket:\n  array_size: "{{ NotOurTask.path }}"\n...\n'
    )
    config = _config(broken_elsewhere)(tmp_path, work_dir)
    result = run_cli("run", "Test", "-c", str(config), env=isolated_env(cli_env, tmp_path / "t"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert row_counts(work_dir)["Test"] == 1
    broken = run_cli("run", "TestSocket", "-c", str(config), env=isolated_env(cli_env, tmp_path / "t"))
    _assert_bad_input(broken, ("NotOurTask.path",))
    assert "TestSocket" not in row_counts(work_dir)


def test_bad_input_leaves_an_existing_database_unchanged(
    tmp_path: Path, work_dir: Path, cli_env: Dict[str, str]
) -> None:
    record_run(
        work_dir,
        RunRecord(
            task_name="Test",
            header={"experiment": "xpptut15", "run": 14},
            parameters={"compound_var": {"int_var": 1}},
            task_status="COMPLETED",
            summary="seeded",
            payload=None,
        ),
    )
    before = row_counts(work_dir)
    assert before["Test"] == 1
    tmpdir = tmp_path / "t"
    env = isolated_env(cli_env, tmpdir)
    for case in CASES:
        if case.name in ("wrong-type", "unknown-parameter", "missing-required-parameter", "unknown-task"):
            folder = tmp_path / case.name
            folder.mkdir()
            result = run_cli("run", case.task, "-c", str(case.make(folder, work_dir)), env=env)
            assert result.returncode == 2, (case.name, result.stderr)
    assert row_counts(work_dir) == before
    assert run_dirs(tmpdir) == []
