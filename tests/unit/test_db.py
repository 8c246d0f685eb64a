"""Unit tests of lute_kernel.db (flattening, seed schema, records, reads) and the db CLI."""

from __future__ import annotations

import multiprocessing
import sqlite3
import sys
import types
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lute_kernel.cli.db import db_app
from lute_kernel.db import (
    RunRecord,
    db_path,
    flatten,
    get_row,
    invalidate,
    latest_row,
    latest_value,
    list_rows,
    list_tasks,
    record_run,
)
from lute_kernel.db.flatten import column_type, to_sql_value
from lute_kernel.errors import DatabaseError, InputError

HEADER = {
    "title": "LUTE Task Configuration",
    "experiment": "mfxl1234567",
    "run": 12,
    "date": "2024/01/01",
    "lute_version": "0.1",
    "task_timeout": 600,
    "work_dir": "/ignored",
}


def make_record(task_name: str = "Test", **changes: Any) -> RunRecord:
    fields: dict[str, Any] = {
        "task_name": task_name,
        "header": HEADER,
        "parameters": {"float_var": 0.01, "str_var": "test", "compound_var": {"int_var": 10}},
        "task_status": "COMPLETED",
        "summary": "done",
        "payload": "out.h5",
    }
    fields.update(changes)
    return RunRecord(**fields)


def columns(work_dir: Path, table: str) -> list[str]:
    with sqlite3.connect(db_path(work_dir)) as con:
        return [row[1] for row in con.execute(f'PRAGMA table_info("{table}")')]


# --- flattening ------------------------------------------------------------------------------


def test_flatten_nested_dicts_and_lists() -> None:
    assert flatten({"a": {"b": [1, 2], "c": "x"}}) == {"a.b[0]": 1, "a.b[1]": 2, "a.c": "x"}


def test_flatten_lists_of_dicts_nested_lists_and_empties() -> None:
    data = {
        "peaks": [{"k": 1}, {"k": 2.5}],
        "grid": [[1, 2], (3,)],
        "empty_d": {},
        "empty_l": [],
        "nothing": None,
    }
    assert flatten(data) == {
        "peaks[0].k": 1,
        "peaks[1].k": 2.5,
        "grid[0][0]": 1,
        "grid[0][1]": 2,
        "grid[1][0]": 3,
        "empty_d": "{}",
        "empty_l": "[]",
        "nothing": None,
    }


def test_flatten_scalar_conversions() -> None:
    assert flatten({"t": True, "f": False, "i": 3, "r": 1.5, "s": "x"}) == {
        "t": 1,
        "f": 0,
        "i": 3,
        "r": 1.5,
        "s": "x",
    }
    assert to_sql_value((1, "a")) == '[1, "a"]'  # leaves that are not scalars become JSON
    assert to_sql_value({1}) == "{1}"  # not JSON-serialisable -> str()
    assert to_sql_value(Path("/a/b")) == "/a/b"
    assert to_sql_value(b"x") == "b'x'"
    assert flatten({}) == {}


def test_column_type_from_value() -> None:
    assert [column_type(v) for v in (1, 0, 1.0, "x", None)] == [
        "INTEGER",
        "INTEGER",
        "REAL",
        "TEXT",
        "BLOB",
    ]


# --- records and reads -----------------------------------------------------------------------


def test_record_then_latest_value_round_trip(tmp_path: Path) -> None:
    assert record_run(tmp_path, make_record()) == 1
    assert record_run(tmp_path, make_record(payload={"n": 3}, parameters={"str_var": "b"})) == 2
    assert latest_value(tmp_path, "Test", "str_var") == "b"
    assert latest_value(tmp_path, "Test", "result.payload") == '{"n": 3}'
    # Parameters missing from the newest row read as NULL, not as an older value.
    assert latest_value(tmp_path, "Test", "compound_var.int_var") is None
    assert latest_value(tmp_path, "Test", "no_such_column") is None
    assert latest_value(tmp_path, "Other", "str_var") is None


def test_only_valid_rows_are_read(tmp_path: Path) -> None:
    record_run(tmp_path, make_record(parameters={"outfile_name": "good.h5"}))
    record_run(tmp_path, make_record(parameters={"outfile_name": "bad.h5"}, task_status="FAILED"))
    record_run(tmp_path, make_record(parameters={"outfile_name": "off.h5"}, valid=False))
    assert latest_value(tmp_path, "Test", "outfile_name") == "good.h5"
    newest = latest_row(tmp_path, "Test", valid_only=False)
    assert newest is not None and newest["outfile_name"] == "off.h5"
    assert newest["valid_flag"] == 0


def test_invalidate(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no database"):
        invalidate(tmp_path, "Test", 1)
    assert not db_path(tmp_path).exists()
    record_run(tmp_path, make_record(parameters={"outfile_name": "one.h5"}))
    record_run(tmp_path, make_record(parameters={"outfile_name": "two.h5"}))
    invalidate(tmp_path, "Test", 2)
    assert latest_value(tmp_path, "Test", "outfile_name") == "one.h5"
    with pytest.raises(InputError, match="no row 9"):
        invalidate(tmp_path, "Test", 9)
    with pytest.raises(InputError, match="no Task table 'Nope'"):
        invalidate(tmp_path, "Nope", 1)


def test_task_table_schema_matches_upstream(tmp_path: Path) -> None:
    record = make_record(parameters={"p": 1, "lute_config": {"title": "t"}})
    record_run(tmp_path, record)
    assert columns(tmp_path, "Test") == [
        "id",
        "timestamp",
        "gen_cfg_id",
        "exec_cfg_id",
        "p",
        "result.task_status",
        "result.summary",
        "result.payload",
        "result.impl_schemas",
        "valid_flag",
        "prov.runtime",
        "prov.launcher",
        "prov.image",
        "prov.image_sha256",
        "prov.kernel_version",
        "prov.argv",
        "prov.host",
        "prov.start",
        "prov.end",
        "prov.exit_code",
        "prov.config",
        "prov.site",
        "prov.ranks",
        "prov.pid",
        "prov.pid_start",
    ]
    assert columns(tmp_path, "gen_cfg") == [
        "id",
        "title",
        "experiment",
        "run",
        "date",
        "lute_version",
        "task_timeout",
    ]
    assert columns(tmp_path, "exec_cfg") == ["id", "env", "poll_interval", "communicator_desc"]
    with sqlite3.connect(db_path(tmp_path)) as con:
        types = {row[1]: row[2] for row in con.execute('PRAGMA table_info("Test")')}
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert types["p"] == "INTEGER"
    assert types["timestamp"] == "DATETIME"
    assert types["prov.exit_code"] == "INTEGER"


def test_shared_config_rows_are_deduplicated(tmp_path: Path) -> None:
    env = {"SLURM_JOB_ID": "7", "LUTE_CONFIGPATH": "/c.yaml"}
    first = record_run(tmp_path, make_record(env=env, poll_interval=0.05))
    reordered = dict(reversed(list(env.items())))
    second = record_run(tmp_path, make_record(env=reordered, poll_interval=0.05))
    other = record_run(tmp_path, make_record(header={**HEADER, "run": 13}, env=env))
    rows = {row["id"]: row for row in list_rows(tmp_path, "Test")}
    assert rows[first]["gen_cfg_id"] == rows[second]["gen_cfg_id"] == 1
    assert rows[other]["gen_cfg_id"] == 2
    assert rows[first]["exec_cfg_id"] == rows[second]["exec_cfg_id"] == 1
    assert rows[other]["exec_cfg_id"] == 2  # the poll interval differs
    detail = get_row(tmp_path, "Test", first)
    assert detail["gen_cfg.experiment"] == "mfxl1234567"
    assert detail["gen_cfg.run"] == 12
    assert "gen_cfg.work_dir" not in detail
    assert detail["exec_cfg.env"] == '{"LUTE_CONFIGPATH": "/c.yaml", "SLURM_JOB_ID": "7"}'
    assert detail["exec_cfg.poll_interval"] == 0.05


def test_new_parameters_add_columns(tmp_path: Path) -> None:
    record_run(tmp_path, make_record(parameters={"a": 1}))
    record_run(tmp_path, make_record(parameters={"a": 2, "b": {"c": [True]}}))
    assert columns(tmp_path, "Test")[-1] == "b.c[0]"
    old, new = sorted(list_rows(tmp_path, "Test"), key=lambda row: row["id"])
    assert old["b.c[0]"] is None
    assert new["b.c[0]"] == 1


def test_provenance_is_stored(tmp_path: Path) -> None:
    start = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=-7)))
    row_id = record_run(
        tmp_path,
        make_record(
            runtime="apptainer",
            launcher="srun",
            image="psana1",
            image_sha256="ab" * 32,
            kernel_version="0.1.0",
            argv=["srun", "-n", "4", "apptainer", "exec"],
            host="sdfmilan001",
            start=start,
            end=datetime(2024, 5, 1, 19, 5, 0),
            exit_code=0,
        ),
    )
    row = get_row(tmp_path, "Test", row_id)
    assert row["prov.argv"] == '["srun", "-n", "4", "apptainer", "exec"]'
    assert row["prov.start"] == "2024-05-01T19:00:00+00:00"
    assert row["prov.end"] == "2024-05-01T19:05:00+00:00"
    assert row["prov.exit_code"] == 0
    assert row["prov.image_sha256"] == "ab" * 32


def test_reading_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    assert latest_value(tmp_path, "Test", "x") is None
    assert latest_row(tmp_path, "Test") is None
    with pytest.raises(InputError, match="no database"):
        list_tasks(tmp_path)
    with pytest.raises(InputError, match="no database"):
        get_row(tmp_path, "Test", 1)
    assert list(tmp_path.iterdir()) == []


def test_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="invalid Task name"):
        record_run(tmp_path, make_record('Test"; DROP TABLE gen_cfg; --'))
    with pytest.raises(InputError, match="reserved"):
        record_run(tmp_path, make_record("gen_cfg"))
    with pytest.raises(DatabaseError, match="reserved column"):
        record_run(tmp_path, make_record(parameters={"valid_flag": 1}))
    assert not db_path(tmp_path).exists()
    record_run(tmp_path, make_record(parameters={'we"ird': 1}))
    assert latest_value(tmp_path, "Test", 'we"ird') == 1
    assert latest_value(tmp_path, "Te st", "x") is None


def test_listings(tmp_path: Path) -> None:
    for n in range(3):
        record_run(tmp_path, make_record(parameters={"n": n}))
    record_run(tmp_path, make_record("TestWriteOutput", task_status="FAILED"))
    assert [row["n"] for row in list_rows(tmp_path, "Test", limit=2)] == [2, 1]
    summaries = {s.name: s for s in list_tasks(tmp_path)}
    assert sorted(summaries) == ["Test", "TestWriteOutput"]
    assert (summaries["Test"].rows, summaries["Test"].valid) == (3, 3)
    assert (summaries["TestWriteOutput"].rows, summaries["TestWriteOutput"].valid) == (1, 0)
    assert summaries["Test"].last_timestamp is not None
    with pytest.raises(InputError, match="no Task table"):
        list_rows(tmp_path, "Missing")


# --- concurrency -----------------------------------------------------------------------------

PROCESSES = 4
RECORDS_EACH = 25


def _write_many(work_dir: str, worker: int, go: Any) -> None:
    go.wait()
    for n in range(RECORDS_EACH):
        # Workers 0/1 and 2/3 use different parameter sets, so column additions race.
        parameters: dict[str, Any] = {"n": n, "worker": worker}
        parameters[f"only_{worker % 2}"] = {"v": [n, worker]}
        record_run(work_dir, make_record(parameters=parameters, header={**HEADER, "run": n % 3}))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    procs = [context.Process(target=_write_many, args=(str(tmp_path), worker, go)) for worker in range(PROCESSES)]
    for proc in procs:
        proc.start()
    go.set()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0] * PROCESSES
    rows = list_rows(tmp_path, "Test", limit=1000)
    assert len(rows) == PROCESSES * RECORDS_EACH
    assert {(row["worker"], row["n"]) for row in rows} == {
        (w, n) for w in range(PROCESSES) for n in range(RECORDS_EACH)
    }
    assert all(row[f"only_{row['worker'] % 2}.v[1]"] == row["worker"] for row in rows)
    with sqlite3.connect(db_path(tmp_path)) as con:
        assert con.execute("SELECT COUNT(*) FROM gen_cfg").fetchone()[0] == 3
        assert con.execute("SELECT COUNT(*) FROM exec_cfg").fetchone()[0] == 1


# --- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_cli_ls_and_show(tmp_path: Path, runner: CliRunner) -> None:
    record_run(tmp_path, make_record(parameters={"a": {"b": [1]}}, summary="first"))
    record_run(tmp_path, make_record(summary="second", image_sha256="f" * 64))
    result = runner.invoke(db_app, ["ls", "-w", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Test" in result.stdout and "2" in result.stdout
    result = runner.invoke(db_app, ["show", "Test", "--work-dir", str(tmp_path), "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "second" in result.stdout and "first" not in result.stdout
    result = runner.invoke(db_app, ["show", "Test", "--id", "1", "-w", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for text in ("a.b[0]", "prov.launcher", "gen_cfg.experiment", "mfxl1234567", "first"):
        assert text in result.stdout


def test_cli_invalidate(tmp_path: Path, runner: CliRunner) -> None:
    record_run(tmp_path, make_record(parameters={"x": 1}))
    result = runner.invoke(db_app, ["invalidate", "Test", "1", "-w", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Test row 1 marked invalid" in result.stdout
    assert latest_row(tmp_path, "Test") is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ls"], "no database"),
        (["show", "Test"], "no database"),
        (["invalidate", "Test", "1"], "no database"),
        (["show", "Test", "--id", "3"], "no row 3"),
        (["show", "Nope"], "no Task table 'Nope'"),
    ],
)
def test_cli_errors_exit_2(tmp_path: Path, runner: CliRunner, args: list[str], message: str) -> None:
    if "no database" not in message:
        record_run(tmp_path, make_record())
    result = runner.invoke(db_app, [*args, "-w", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_takes_work_dir_from_config(tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    record_run(tmp_path, make_record())
    loaded = types.SimpleNamespace(header=lambda: {"work_dir": str(tmp_path)})
    fake = types.ModuleType("lute_kernel.config")
    fake.load_config = lambda path: loaded  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lute_kernel.config", fake)
    result = runner.invoke(db_app, ["ls", "-c", str(tmp_path / "cfg.yaml")])
    assert result.exit_code == 0, result.output
    assert "Test" in result.stdout


def test_cli_needs_a_work_dir(runner: CliRunner) -> None:
    result = runner.invoke(db_app, ["ls"])
    assert result.exit_code == 2
    assert "--work-dir" in result.stderr


@pytest.mark.parametrize("command", ["ls", "show", "invalidate"])
def test_cli_help(runner: CliRunner, command: str) -> None:
    result = runner.invoke(db_app, [command, "--help"])
    assert result.exit_code == 0
    assert "--work-dir" in result.stdout
