"""An upstream-format config runs each ported test Task, by class name and by upstream alias, into lute.db."""

from __future__ import annotations

import json
import socket
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
from conftest import run_cli
from e2e import TEST_BIN, argv_of, assert_no_leftovers, isolated_env, last_line, only_row, run_dirs, tables

import lute_kernel

pytestmark = pytest.mark.integration

SECTIONS: Dict[str, Any] = {
    "Test": {
        "float_var": 0.01,
        "str_var": "test",
        "compound_var": {"int_var": 10, "dict_var": {"a": "b"}},
        "throw_error": False,
        "sleep_secs": 0.01,
    },
    "TestBinary": {"executable": str(TEST_BIN / "test_threads"), "p_arg1": 4},
    "TestBinaryErr": {"executable": str(TEST_BIN / "test_threads_err"), "p_arg1": 4},
    "TestSocket": {"array_size": 8000, "num_arrays": 10},
    "TestWriteOutput": {"outfile_name": "test_output.txt", "num_vals": 50},
    "TestReadOutput": {},
}

# (class name, upstream alias, expected status, expected exit code), in the upstream DAG's order.
RUNS = [
    ("Test", "Tester", "COMPLETED", 0),
    ("TestBinary", "BinaryTester", "COMPLETED", 0),
    ("TestBinaryErr", "BinaryErrTester", "FAILED", 1),
    ("TestSocket", "SocketTester", "COMPLETED", 0),
    ("TestWriteOutput", "WriteTester", "COMPLETED", 0),
    ("TestReadOutput", "ReadTester", "COMPLETED", 0),
]


@pytest.mark.parametrize("by_alias", [False, True], ids=["class-names", "aliases"])
def test_upstream_config_runs_every_task_and_records_it(
    by_alias: bool, make_config: Callable[..., Path], work_dir: Path, cli_env: Dict[str, str], tmp_path: Path
) -> None:
    config = make_config(SECTIONS)
    tmpdir = tmp_path / "t"
    env = isolated_env(cli_env, tmpdir, SECRET_TOKEN="do-not-leak")
    for class_name, alias, status, code in RUNS:
        result = run_cli("run", alias if by_alias else class_name, "-c", str(config), env=env)
        assert result.returncode == code, (class_name, result.stdout, result.stderr)
        assert last_line(result.stdout).startswith(f"{class_name}: {status} in "), result.stdout
        assert f"lute-kernel: {class_name} {status}" in result.stdout
    assert_no_leftovers(tmpdir)

    assert {"gen_cfg", "exec_cfg", *(name for name, *_ in RUNS)} <= set(tables(work_dir))
    recorded = {name: only_row(work_dir, name) for name, *_ in RUNS}
    for (name, _alias, status, _code), row in zip(RUNS, recorded.values()):
        _check_common_columns(work_dir, name, row, status)

    test = recorded["Test"]
    assert test["compound_var.int_var"] == 10
    assert test["compound_var.dict_var.a"] == "b"
    assert test["float_var"] == 0.01
    assert test["str_var"] == "test"
    assert test["throw_error"] == 0
    assert test["result.summary"] == "Test Finished."
    assert argv_of(test)[1:] == ["-m", "lute_kernel.worker"]

    binary = recorded["TestBinary"]
    assert binary["p_arg1"] == 4
    assert argv_of(binary) == [str(TEST_BIN / "test_threads"), "4"]
    assert binary["prov.exit_code"] == 0

    failed = recorded["TestBinaryErr"]
    assert argv_of(failed) == [str(TEST_BIN / "test_threads_err"), "4"]
    assert failed["prov.exit_code"] == 3
    assert "exited with code 3" in failed["result.summary"]
    assert "simulated failure after threads finished" in failed["result.summary"]

    sock = recorded["TestSocket"]
    assert (sock["array_size"], sock["num_arrays"]) == (8000, 10)
    assert sock["result.summary"] == "Sent 10 arrays"
    assert sock["result.payload"].startswith("ndarray float64 (8000,)")

    written = recorded["TestWriteOutput"]
    out_file = work_dir / "test_output.txt"
    assert written["result.payload"] == str(out_file)
    assert written["result.summary"] == "values_written: 50"  # a dict summary is stored as "key: value"
    assert len(out_file.read_text().split()) == 50

    read = recorded["TestReadOutput"]
    assert read["in_file"] == str(out_file)  # the default came from TestWriteOutput's row
    assert read["result.summary"] == "values_read: 50"

    with sqlite3.connect(work_dir / "lute.db") as con:
        envs = [json.loads(env) for (env,) in con.execute("SELECT env FROM exec_cfg")]
    assert envs and all("SECRET_TOKEN" not in recorded_env for recorded_env in envs)
    assert any(recorded_env.get("LUTE_TASK") == "Test" for recorded_env in envs)


def _check_common_columns(work_dir: Path, name: str, row: Dict[str, Any], status: str) -> None:
    assert row["result.task_status"] == status, (name, row["result.summary"])
    assert row["valid_flag"] == (1 if status == "COMPLETED" else 0), name
    assert "result.impl_schemas" in row
    assert row["prov.runtime"] == "local"
    assert row["prov.launcher"] == "direct"
    assert row["prov.kernel_version"] == lute_kernel.__version__
    assert row["prov.host"] == socket.gethostname()
    start, end = datetime.fromisoformat(row["prov.start"]), datetime.fromisoformat(row["prov.end"])
    assert start <= end
    if status == "COMPLETED":
        assert row["prov.exit_code"] == 0
    with sqlite3.connect(work_dir / "lute.db") as con:
        con.row_factory = sqlite3.Row
        gen = dict(con.execute("SELECT * FROM gen_cfg WHERE id = ?", (row["gen_cfg_id"],)).fetchone())
        exec_cfg = con.execute("SELECT * FROM exec_cfg WHERE id = ?", (row["exec_cfg_id"],)).fetchone()
    assert gen["experiment"] == "xpptut15"
    assert gen["run"] == 14
    assert gen["task_timeout"] == 60
    assert exec_cfg is not None


def test_read_output_before_any_write_output_is_bad_input(
    make_config: Callable[..., Path], work_dir: Path, cli_env: Dict[str, str], tmp_path: Path
) -> None:
    config = make_config(SECTIONS)
    tmpdir = tmp_path / "t"
    result = run_cli("run", "ReadTester", "-c", str(config), env=isolated_env(cli_env, tmpdir))
    assert result.returncode == 2, result.stdout
    assert "in_file" in result.stderr
    assert "TestWriteOutput" in result.stderr
    assert not (work_dir / "lute.db").exists()
    assert run_dirs(tmpdir) == []
