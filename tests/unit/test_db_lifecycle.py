"""A run's row: RUNNING before launch, final after (never again changed), LOST when its kernel died;
what exec_cfg keeps of the environment; DB-derived defaults of the same run; the db CLI on bad input."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationInfo, field_validator
from typer.testing import CliRunner

from lute_kernel.cli.db import db_app
from lute_kernel.db import (
    RunRecord,
    begin_run,
    db_path,
    display_status,
    finish_run,
    get_row,
    latest_row,
    latest_value,
    list_rows,
    record_run,
    recorded_env,
)
from lute_kernel.db.env import SECRET_WORDS
from lute_kernel.db.liveness import process_start
from lute_kernel.errors import DatabaseError
from lute_kernel.parameters import TaskParameters, recorded_value

HEADER = {"title": "t", "experiment": "xpptut15", "run": 14, "date": "2026/11/22", "task_timeout": 60}


def make_record(**changes: Any) -> RunRecord:
    fields: Dict[str, Any] = {
        "task_name": "Test",
        "header": HEADER,
        "parameters": {"outfile_name": "out.h5", "n": {"m": [1, 2]}},
        "task_status": "COMPLETED",
        "summary": "done",
        "payload": "out.h5",
        "argv": ["python", "-m", "lute_kernel.worker"],
        "runtime": "local",
    }
    fields.update(changes)
    return RunRecord(**fields)


# --- RUNNING before launch, final after ------------------------------------------------------


def test_begin_writes_a_running_invalid_row_naming_this_kernel(tmp_path: Path) -> None:
    row_id = begin_run(tmp_path, make_record(task_status="COMPLETED", payload="ignored"))
    row = get_row(tmp_path, "Test", row_id)
    assert (row["result.task_status"], row["valid_flag"], row["result.payload"]) == ("RUNNING", 0, None)
    assert (row["outfile_name"], row["n.m[1]"]) == ("out.h5", 2)
    assert (row["prov.host"], row["prov.pid"]) == (socket.gethostname(), os.getpid())
    assert row["prov.pid_start"] == process_start(os.getpid()) and row["prov.pid_start"] > 0
    assert row["prov.end"] is None and row["prov.exit_code"] is None
    assert row["gen_cfg.run"] == 14
    assert display_status(row) == "RUNNING"  # this process is alive
    assert latest_value(tmp_path, "Test", "outfile_name") is None  # not valid: no default reads it


def test_finish_updates_the_same_row_once(tmp_path: Path) -> None:
    row_id = begin_run(tmp_path, make_record())
    start, end = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 1, 0, 5, tzinfo=timezone.utc)
    finish_run(tmp_path, row_id, make_record(start=start, end=end, exit_code=0, argv=["other"]))
    row = get_row(tmp_path, "Test", row_id)
    assert (row["result.task_status"], row["valid_flag"], row["result.payload"]) == ("COMPLETED", 1, "out.h5")
    assert (row["prov.start"], row["prov.end"], row["prov.exit_code"]) == (
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T00:05:00+00:00",
        0,
    )
    assert row["prov.argv"] == '["python", "-m", "lute_kernel.worker"]'  # written before launch, kept
    assert len(list_rows(tmp_path, "Test")) == 1
    assert latest_value(tmp_path, "Test", "outfile_name") == "out.h5"

    with pytest.raises(DatabaseError, match=f"Test row {row_id} is already COMPLETED; a final row never changes"):
        finish_run(tmp_path, row_id, make_record(task_status="FAILED", summary="late"))
    assert get_row(tmp_path, "Test", row_id) == row


@pytest.mark.parametrize("status", ["FAILED", "TIMEDOUT", "CANCELLED"])
def test_failed_runs_finish_invalid(tmp_path: Path, status: str) -> None:
    row_id = begin_run(tmp_path, make_record())
    finish_run(tmp_path, row_id, make_record(task_status=status, summary="why", exit_code=-9))
    row = get_row(tmp_path, "Test", row_id)
    assert (row["result.task_status"], row["valid_flag"], row["prov.exit_code"]) == (status, 0, -9)


def test_finish_refusals(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="is gone"):
        finish_run(tmp_path, 1, make_record())
    row_id = begin_run(tmp_path, make_record())
    with pytest.raises(ValueError, match="'RUNNING' is not a final status"):
        finish_run(tmp_path, row_id, make_record(task_status="RUNNING"))
    with pytest.raises(DatabaseError, match="no such row"):
        finish_run(tmp_path, row_id + 1, make_record())
    with pytest.raises(DatabaseError, match="has no Task table 'Other'"):
        finish_run(tmp_path, row_id, make_record(task_name="Other"))
    with pytest.raises(DatabaseError, match="is not a row id"):
        finish_run(tmp_path, 2**63, make_record())
    assert get_row(tmp_path, "Test", row_id)["result.task_status"] == "RUNNING"


def test_a_summary_that_is_not_utf8_is_escaped_not_lost(tmp_path: Path) -> None:
    row_id = begin_run(tmp_path, make_record())
    finish_run(tmp_path, row_id, make_record(summary="bad \ud800 text", payload={"x": "\udfff"}))
    row = get_row(tmp_path, "Test", row_id)
    assert row["result.summary"] == "bad \\ud800 text"
    assert row["result.payload"] == '{"x": "\\udfff"}'


def test_database_failures_name_the_file(tmp_path: Path) -> None:
    db_path(tmp_path).mkdir()
    with pytest.raises(DatabaseError, match=f"{db_path(tmp_path)} is a directory, not a database"):
        begin_run(tmp_path, make_record())
    garbage = tmp_path / "g"
    garbage.mkdir()
    db_path(garbage).write_bytes(b"definitely not SQLite" * 10)
    with pytest.raises(DatabaseError, match=f"{db_path(garbage)}.*file is not a database"):
        record_run(garbage, make_record())


# --- LOST ------------------------------------------------------------------------------------


def dead_pid() -> tuple[int, Optional[int]]:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    start = process_start(child.pid)
    child.communicate(b"")
    return child.pid, start


def test_a_running_row_whose_kernel_died_shows_lost(tmp_path: Path) -> None:
    pid, start = dead_pid()
    assert start is not None
    row_id = begin_run(tmp_path, make_record(pid=pid, pid_start=start))
    row = get_row(tmp_path, "Test", row_id)
    assert row["result.task_status"] == "RUNNING"  # display only: the row is not changed
    assert display_status(row) == "LOST"
    assert row["valid_flag"] == 0


def test_a_reused_pid_is_not_taken_for_the_kernel(tmp_path: Path) -> None:
    mine = process_start(os.getpid())
    assert mine is not None
    row_id = begin_run(tmp_path, make_record(pid=os.getpid(), pid_start=mine + 1))
    assert display_status(get_row(tmp_path, "Test", row_id)) == "LOST"


def test_rows_of_other_hosts_and_final_rows(tmp_path: Path) -> None:
    other = begin_run(tmp_path, make_record(host="sdfmilan042", pid=1, pid_start=1))
    assert display_status(get_row(tmp_path, "Test", other)) == "RUNNING (host sdfmilan042)"
    final = record_run(tmp_path, make_record(task_status="FAILED", pid=1, pid_start=1))
    assert display_status(get_row(tmp_path, "Test", final)) == "FAILED"
    assert display_status({"result.task_status": "RUNNING", "prov.host": socket.gethostname()}) == "RUNNING"


def test_the_cli_shows_lost_rows(tmp_path: Path) -> None:
    pid, start = dead_pid()
    row_id = begin_run(tmp_path, make_record(pid=pid, pid_start=start))
    begin_run(tmp_path, make_record(host="elsewhere"))
    runner = CliRunner()
    listing = runner.invoke(db_app, ["show", "Test", "-w", str(tmp_path)], env={"COLUMNS": "200"})
    assert listing.exit_code == 0, listing.output
    assert "LOST" in listing.stdout and "RUNNING (host" in listing.stdout
    detail = runner.invoke(db_app, ["show", "Test", "--id", str(row_id), "-w", str(tmp_path)], env={"COLUMNS": "200"})
    assert detail.exit_code == 0, detail.output
    assert f"LOST (recorded RUNNING; kernel pid {pid} on {socket.gethostname()} is gone)" in detail.stdout


# --- exec_cfg.env ----------------------------------------------------------------------------


def test_exec_cfg_keeps_lute_slurm_and_the_allowlist_never_a_secret(tmp_path: Path) -> None:
    env = {
        "LUTE_CONFIGPATH": "/c.yaml",
        "LUTE_IPC_TOKEN": "s3cr3t-token-value",
        "LUTE_TENV_OLD": "x",
        "SLURM_JOB_ID": "7",
        "SLURM_API_Key": "s3cr3t-key-value",
        "HOME": "/home/me",
        "PATH": "/usr/bin",
        "VIRTUAL_ENV": "/venv",
        "GITHUB_TOKEN": "s3cr3t-gh",
        "MYTOOL_HOME": "/opt/tool",
        "MYTOOL_PASSWORD": "s3cr3t-pw",
        "LANG": "C.UTF-8",
    }
    row_id = record_run(tmp_path, make_record(env=env, env_allowlist=("MYTOOL_*", "LANG")))
    stored = get_row(tmp_path, "Test", row_id)["exec_cfg.env"]
    assert stored == (
        '{"LANG": "C.UTF-8", "LUTE_CONFIGPATH": "/c.yaml", "MYTOOL_HOME": "/opt/tool", "SLURM_JOB_ID": "7"}'
    )
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("lute.db"))
    assert b"s3cr3t" not in on_disk
    # Variables that are not recorded do not make a new exec_cfg row.
    again = record_run(tmp_path, make_record(env={**env, "HOME": "/elsewhere", "GITHUB_TOKEN": "other"}))
    assert get_row(tmp_path, "Test", again)["exec_cfg_id"] != get_row(tmp_path, "Test", row_id)["exec_cfg_id"]
    same = record_run(tmp_path, make_record(env={**env, "HOME": "/x"}, env_allowlist=("MYTOOL_*", "LANG")))
    assert get_row(tmp_path, "Test", same)["exec_cfg_id"] == get_row(tmp_path, "Test", row_id)["exec_cfg_id"]


NAMES = st.text(alphabet="ABCKEYTOKNSRPWDUHLM_abc", min_size=1, max_size=14)


@given(env=st.dictionaries(NAMES, st.text(max_size=3), max_size=8), allowlist=st.lists(NAMES, max_size=3))
def test_recorded_env_never_keeps_a_secret(env: Dict[str, str], allowlist: list[str]) -> None:
    kept = recorded_env(env, [*allowlist, "*"])  # even when everything is allowlisted
    assert all(not any(word in name.upper() for word in SECRET_WORDS) for name in kept)
    assert all(env[name] == value for name, value in kept.items())
    assert set(recorded_env(env)) == {
        n
        for n in env
        if n.startswith(("LUTE_", "SLURM_"))
        and not n.startswith("LUTE_TENV_")
        and not any(w in n.upper() for w in SECRET_WORDS)
    }


# --- DB-derived defaults of the same run -----------------------------------------------------


def seed_runs(work_dir: Path) -> None:
    for experiment, run, name in [
        ("xpptut15", 12, "r12-old"),
        ("xpptut15", "12", "r12"),  # the same run, given as text
        ("xpptut15", 13, "r13"),
        ("xpptut15", "12_20260101", "r12-stamped"),
        ("mfxl1234567", 12, "other-experiment"),
    ]:
        record_run(work_dir, make_record(header={**HEADER, "experiment": experiment, "run": run}, payload=name))
    # Newer rows of run 12 that must not be read: one failed, one still running.
    record_run(work_dir, make_record(header={**HEADER, "run": 12}, payload="failed", task_status="FAILED"))
    begin_run(work_dir, make_record(header={**HEADER, "run": 12}, payload="running"))


@pytest.mark.parametrize(
    ("run", "expected"),
    [(12, "r12"), ("12", "r12"), ("012", "r12"), (13, "r13"), ("12_20260101", "r12-stamped"), (14, None), ("", None)],
)
def test_latest_value_reads_the_newest_valid_row_of_the_same_run(
    tmp_path: Path, run: Any, expected: Optional[str]
) -> None:
    seed_runs(tmp_path)
    assert latest_value(tmp_path, "Test", "result.payload", experiment="xpptut15", run=run) == expected
    row = latest_row(tmp_path, "Test", experiment="xpptut15", run=run)
    assert (row or {}).get("result.payload") == expected


def test_experiment_and_run_filters(tmp_path: Path) -> None:
    seed_runs(tmp_path)
    assert latest_value(tmp_path, "Test", "result.payload", experiment="mfxl1234567", run=12) == "other-experiment"
    assert latest_value(tmp_path, "Test", "result.payload", experiment="mfxl1234567", run=13) is None
    assert latest_value(tmp_path, "Test", "result.payload", run=12) == "other-experiment"
    assert latest_value(tmp_path, "Test", "result.payload") == "other-experiment"  # no filter: newest valid
    newest = latest_row(tmp_path, "Test", valid_only=False, run=12)
    assert newest is not None and newest["result.task_status"] == "RUNNING"


class Reader(TaskParameters):
    in_file: str = ""

    @field_validator("in_file")
    @classmethod
    def _from_db(cls, in_file: str, info: ValidationInfo) -> str:
        return in_file or str(recorded_value(info, "Test", "result.payload") or "")


@pytest.mark.parametrize(("run", "expected"), [(12, "r12"), ("12", "r12"), (13, "r13"), (99, "")])
def test_recorded_value_passes_the_headers_experiment_and_run(tmp_path: Path, run: Any, expected: str) -> None:
    seed_runs(tmp_path)
    header = {"work_dir": str(tmp_path), "experiment": "xpptut15", "run": run}
    assert Reader.model_validate({"lute_config": header}).in_file == expected


def test_recorded_value_on_an_unreadable_database_is_a_field_error(tmp_path: Path) -> None:
    db_path(tmp_path).write_bytes(b"garbage" * 100)
    with pytest.raises(ValueError, match=r"cannot read Test's result\.payload from the database"):
        Reader.model_validate({"lute_config": {"work_dir": str(tmp_path), "run": 1}})


# --- the db CLI on bad input -----------------------------------------------------------------

COMMANDS = [["ls"], ["show", "Test"], ["show", "Test", "--id", "1"], ["invalidate", "Test", "1"]]


@pytest.mark.parametrize("contents", [b"", b"garbage " * 100, b"SQLite format 3\x00" + b"\x07" * 300], ids=str)
@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_cli_on_a_garbage_database_exits_2_with_one_line(tmp_path: Path, args: list[str], contents: bytes) -> None:
    db_path(tmp_path).write_bytes(contents)
    result = CliRunner().invoke(db_app, [*args, "-w", str(tmp_path)])
    if contents == b"" and args == ["ls"]:
        assert result.exit_code == 0, result.output  # an empty file is an empty database
        return
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert db_path(tmp_path).read_bytes() == contents


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_cli_on_a_directory_database(tmp_path: Path, args: list[str]) -> None:
    db_path(tmp_path).mkdir()
    result = CliRunner().invoke(db_app, [*args, "-w", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr == f"error: {db_path(tmp_path)} is a directory, not a database\n"


@pytest.mark.parametrize("row_id", ["99999999999999999999", "9223372036854775808", "0", "-1"])
def test_cli_row_ids_out_of_range(tmp_path: Path, row_id: str) -> None:
    record_run(tmp_path, make_record())
    for args in (["show", "Test", "--id", row_id], ["invalidate", "Test", "--", row_id]):
        result = CliRunner().invoke(db_app, [args[0], "-w", str(tmp_path), *args[1:]])
        assert result.exit_code == 2, result.output
        assert result.stderr == f"error: row id {row_id} is out of range: ids run from 1 to 9223372036854775807\n"
