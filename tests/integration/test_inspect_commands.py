"""The commands that look without running: explain, validate, config show, tasks; and the db viewer."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable, Dict

import pytest
from conftest import run_cli
from e2e import TEST_BIN, isolated_env, only_row, rows, run_dirs

pytestmark = pytest.mark.integration

TEST_SECTION = {"float_var": 2.5, "compound_var": {"int_var": 7, "dict_var": {"a": "z"}}, "sleep_secs": 0}
BINARY_SECTION = {"executable": str(TEST_BIN / "test_threads"), "p_arg1": 4}


def test_explain_prints_parameters_argv_and_env_and_runs_nothing(
    make_config: Callable[..., Path], work_dir: Path, cli_env: Dict[str, str], tmp_path: Path
) -> None:
    config = make_config({"Test": TEST_SECTION, "TestBinary": BINARY_SECTION})
    tmpdir = tmp_path / "t"
    env = isolated_env(cli_env, tmpdir, SECRET_TOKEN="do-not-leak", LUTE_E2E_MARK="passes")

    binary = run_cli("explain", "TestBinary", "-c", str(config), "--json", env=env)
    assert binary.returncode == 0, binary.stderr
    info = json.loads(binary.stdout)
    assert info["argv"] == [str(TEST_BIN / "test_threads"), "4"]
    assert [info[key] for key in ("task", "kind", "runtime", "launcher")] == ["TestBinary", "binary", "local", "direct"]
    assert info["parameters"]["p_arg1"] == 4
    assert info["start"] == "exec"  # only the local Python worker may be forked
    assert info["cwd"] == str(work_dir)

    python = run_cli("explain", "Tester", "-c", str(config), "--json", env=env)
    assert python.returncode == 0, python.stderr
    info = json.loads(python.stdout)
    assert info["task"] == "Test"
    assert info["argv"] == [sys.executable, "-m", "lute_kernel.worker"]
    assert info["env"]["LUTE_TASK"] == "Test"
    assert info["env"]["LUTE_E2E_MARK"] == "passes"  # LUTE_* is allowlisted
    assert "SECRET_TOKEN" not in info["env"]
    assert info["parameters"]["compound_var"] == {"int_var": 7, "dict_var": {"a": "z"}}
    assert info["parameters"]["float_var"] == 2.5
    assert info["parameters"]["lute_config"]["work_dir"] == str(work_dir)

    text = run_cli("explain", "Test", "-c", str(config), env=env)
    assert text.returncode == 0, text.stderr
    assert "Test" in text.stdout and '"int_var": 7' in text.stdout
    assert json.dumps([sys.executable, "-m", "lute_kernel.worker"]) in text.stdout
    assert "LUTE_TASK=Test" in text.stdout
    assert "SECRET_TOKEN" not in text.stdout

    assert not (work_dir / "lute.db").exists()
    assert run_dirs(tmpdir) == []


def test_validate_reports_every_section(
    make_config: Callable[..., Path], work_dir: Path, cli_env: Dict[str, str]
) -> None:
    clean = make_config({"Test": TEST_SECTION, "TestSocket": {"array_size": 10}})
    result = run_cli("validate", "-c", str(clean), env=cli_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[:3] == ["ok  header", "ok  Test", "ok  TestSocket"]
    assert "3 valid, 0 invalid" in result.stdout

    unknown = make_config({"Test": TEST_SECTION, "NoSuchTask": {"x": 1}, "TestSocket": {}})
    result = run_cli("validate", "-c", str(unknown), env=cli_env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ok  Test" in result.stdout and "ok  TestSocket" in result.stdout
    bad = [line for line in result.stdout.splitlines() if line.startswith("ERR")]
    assert len(bad) == 1 and bad[0].startswith("ERR NoSuchTask: unknown Task 'NoSuchTask'"), result.stdout
    assert "3 valid, 1 invalid" in result.stdout
    assert not (work_dir / "lute.db").exists()


def test_config_show_prints_the_substituted_config_even_for_unknown_tasks(
    make_config: Callable[..., Path], cli_env: Dict[str, str]
) -> None:
    config = make_config(
        {
            "Test": {"str_var": "run {{ run }} of {{ experiment }}", "compound_var": {"int_var": "{{ run }}"}},
            "NonExistentTask": {"padded": "{{ run:04d }}", "nested": {"from_test": "{{ Test.str_var }}"}},
        },
        run=12,
    )
    whole = run_cli("config", "show", "-c", str(config), env=cli_env)
    assert whole.returncode == 0, whole.stderr
    data = json.loads(whole.stdout)
    assert data["header"]["run"] == 12
    assert data["sections"]["Test"]["str_var"] == "run 12 of xpptut15"
    assert data["sections"]["Test"]["compound_var"]["int_var"] == 12  # a whole substitution keeps its type

    one = run_cli("config", "show", "-c", str(config), "--section", "NonExistentTask", env=cli_env)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout) == {"padded": "0012", "nested": {"from_test": "run 12 of xpptut15"}}


def test_tasks_lists_name_image_mpi_gpu_kind_and_aliases(cli_env: Dict[str, str]) -> None:
    result = run_cli("tasks", env=dict(cli_env, COLUMNS="250"))
    assert result.returncode == 0, result.stderr
    cells = {}
    for line in result.stdout.splitlines():
        parts = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(parts) >= 4:
            cells[parts[0]] = parts[1:]
    assert cells["Test"][:5] == ["smoke", "-", "-", "python", "Tester"]
    assert cells["TestBinary"][:5] == ["smoke", "-", "-", "binary", "BinaryTester"]
    assert cells["TestReadOutput"][4] == "ReadTester"
    assert cells["IndexCrystFEL"][:2] == ["crystfel (s3df only)", "-"]  # a site-only image, no MPI
    assert cells["FindPeaksSFX"][:2] == ["psana2", "MPI"]
    assert "FaultSleep" in cells  # LUTE_TASKS_PATH folders are discovered too


def test_db_commands_and_invalidation_steer_read_output(
    make_config: Callable[..., Path], work_dir: Path, cli_env: Dict[str, str], tmp_path: Path
) -> None:
    env = isolated_env(cli_env, tmp_path / "t")
    first = make_config({"TestWriteOutput": {"outfile_name": "first.txt", "num_vals": 3}, "TestReadOutput": {}})
    second = make_config({"TestWriteOutput": {"outfile_name": "second.txt", "num_vals": 5}, "TestReadOutput": {}})
    for config in (first, second):
        assert run_cli("run", "WriteTester", "-c", str(config), env=env).returncode == 0

    listing = run_cli("db", "ls", "-w", str(work_dir), env=env)
    assert listing.returncode == 0, listing.stderr
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in listing.stdout.splitlines()]
    assert ["TestWriteOutput", "2", "2"] in [row[:3] for row in cells], listing.stdout  # Task, rows, valid

    shown = run_cli("db", "show", "TestWriteOutput", "-c", str(second), env=env)
    assert shown.returncode == 0, shown.stderr
    assert "first.txt" in shown.stdout and "second.txt" in shown.stdout
    assert "values_written: 5" in shown.stdout

    detail = run_cli("db", "show", "TestWriteOutput", "--id", "2", "-w", str(work_dir), env=env)
    assert detail.returncode == 0, detail.stderr
    for text in ("result.payload", str(work_dir / "second.txt"), "prov.kernel_version", "gen_cfg.experiment"):
        assert text in detail.stdout, text

    invalidated = run_cli("db", "invalidate", "TestWriteOutput", "2", "-w", str(work_dir), env=env)
    assert invalidated.returncode == 0, invalidated.stderr
    assert [row["valid_flag"] for row in rows(work_dir, "TestWriteOutput")] == [1, 0]

    # TestReadOutput's default is the newest *valid* TestWriteOutput result: first.txt now.
    read = run_cli("run", "ReadTester", "-c", str(second), env=env)
    assert read.returncode == 0, read.stdout + read.stderr
    row = only_row(work_dir, "TestReadOutput")
    assert row["in_file"] == str(work_dir / "first.txt")
    assert row["result.summary"] == "values_read: 3"

    assert run_cli("db", "invalidate", "TestWriteOutput", "1", "-w", str(work_dir), env=env).returncode == 0
    refused = run_cli("run", "ReadTester", "-c", str(second), env=env)
    assert refused.returncode == 2
    assert "no valid TestWriteOutput result" in refused.stderr
    assert len(rows(work_dir, "TestReadOutput")) == 1

    missing = run_cli("db", "invalidate", "TestWriteOutput", "99", "-w", str(work_dir), env=env)
    assert missing.returncode == 2
    assert "no row 99" in missing.stderr
    assert run_dirs(tmp_path / "t") == []
