"""Upstream LUTE's own readers work on our lute.db, and our tables are the ones upstream's writer makes.

The readers below are upstream's statements as they are (slac-lcls/lute ``lute/io/db.py``
``read_latest_db_entry`` over ``lute/io/_sqlite.py`` ``_select_from_db``, and the helpers its
``utilities/dbview`` calls), kept verbatim so that a change of our schema that would break them
fails here. The schema is compared with the DDL this project wrote by hand before it used
peewee's models, column by column (``PRAGMA table_info``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import pytest

from lute_kernel.db import RunRecord, begin_run, db_path, finish_run, latest_value, list_rows, record_run


# --- upstream's readers, verbatim ------------------------------------------------------------
def _select_from_db(con: sqlite3.Connection, table_name: str, col_name: str, condition: Dict[str, str]) -> Any:
    if condition:
        param, val = next(iter(condition.items()))
        sql = f"SELECT {col_name} FROM {table_name} WHERE {param} = {val}"
    else:
        sql = f"SELECT {col_name} FROM {table_name}"
    with con:
        res = con.execute(sql)
        entries = res.fetchall()
    return entries if entries else None


def read_latest_db_entry(
    db_dir: str, task_name: str, param: str, valid_only: bool = True, for_run: Optional[Union[str, int]] = None
) -> Optional[Any]:
    con = sqlite3.Connection(f"{db_dir}/lute.db")
    with con:
        try:
            cond: Dict[str, str] = {}
            if valid_only:
                cond = {"valid_flag": "1"}
            entries = _select_from_db(con, task_name, f'gen_cfg_id,"{param}"', cond)
            if for_run is not None:
                gen_cfg_entries = _select_from_db(con, "gen_cfg", "id", {"run": str(for_run)})
                task_entries_for_run = [entry[1] for entry in entries if (entry[0],) in gen_cfg_entries]
                if task_entries_for_run:
                    return task_entries_for_run[-1]
                return None
            return entries[-1][1]
        except sqlite3.OperationalError:
            return None


def _get_tables(con: sqlite3.Connection) -> List[str]:
    sql = "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    with con:
        res = con.execute(sql)
    return [table[0] for table in res.fetchall()]


def _get_table_cols(con: sqlite3.Connection, table_name: str) -> Dict[str, str]:
    res = con.execute(f"PRAGMA table_info({table_name})")
    return {col[1]: col[2] for col in res.fetchall()}


def _get_all_rows_for_table(con: sqlite3.Connection, table_name: str) -> List[Tuple[Any, ...]]:
    with con:
        res = con.execute(f'SELECT * FROM "{table_name}"')
    return res.fetchall()


# ---------------------------------------------------------------------------------------------


def make_record(run: Any, payload: str, **changes: Any) -> RunRecord:
    fields: Dict[str, Any] = {
        "task_name": "TestWriteOutput",
        "header": {"title": "t", "experiment": "xpptut15", "run": run, "date": "d", "task_timeout": 60},
        "parameters": {"outfile_name": payload, "num_vals": 100},
        "task_status": "COMPLETED",
        "summary": "",
        "payload": payload,
    }
    fields.update(changes)
    return RunRecord(**fields)


def test_upstreams_read_latest_db_entry_reads_our_rows(tmp_path: Path) -> None:
    record_run(tmp_path, make_record(12, "a.txt"))
    record_run(tmp_path, make_record(13, "b.txt"))
    record_run(tmp_path, make_record(12, "failed.txt", task_status="FAILED"))
    running = begin_run(tmp_path, make_record(12, "running.txt"))
    work_dir = str(tmp_path)
    assert read_latest_db_entry(work_dir, "TestWriteOutput", "outfile_name") == "b.txt"
    assert read_latest_db_entry(work_dir, "TestWriteOutput", "result.payload", for_run=12) == "a.txt"
    assert read_latest_db_entry(work_dir, "TestWriteOutput", "outfile_name", for_run="13") == "b.txt"
    # (for a run with no gen_cfg row at all, upstream's reader itself raises TypeError: not tried)
    # Upstream reads a RUNNING row only when asked for invalid rows too, as it would its own.
    assert read_latest_db_entry(work_dir, "TestWriteOutput", "outfile_name", valid_only=False) == "running.txt"
    finish_run(tmp_path, running, make_record(12, "running.txt"))
    assert read_latest_db_entry(work_dir, "TestWriteOutput", "outfile_name", for_run=12) == "running.txt"
    # Ours agrees, and also keeps to the experiment.
    assert latest_value(tmp_path, "TestWriteOutput", "outfile_name", experiment="xpptut15", run=12) == "running.txt"


def test_dbview_reads_every_table(tmp_path: Path) -> None:
    record_run(tmp_path, make_record(12, "a.txt"))
    begin_run(tmp_path, make_record("12_20260101", "b.txt", parameters={"new": {"nested": [1]}}))
    con = sqlite3.Connection(db_path(tmp_path))
    try:
        assert sorted(_get_tables(con)) == ["TestWriteOutput", "exec_cfg", "gen_cfg"]
        for table in _get_tables(con):
            columns = _get_table_cols(con, table)
            rows = _get_all_rows_for_table(con, table)
            assert rows and all(len(row) == len(columns) for row in rows)
        columns = list(_get_table_cols(con, "TestWriteOutput"))
        assert columns[:6] == ["id", "timestamp", "gen_cfg_id", "exec_cfg_id", "outfile_name", "num_vals"]
        assert "new.nested[0]" in columns and "valid_flag" in columns
    finally:
        con.close()


# --- the schema is the one written by hand before, and upstream's writer's --------------------

LEGACY_DDL = [
    'CREATE TABLE "gen_cfg" (id INTEGER PRIMARY KEY AUTOINCREMENT, "title" TEXT, "experiment" TEXT,'
    ' "run" INTEGER, "date" TEXT, "lute_version" TEXT, "task_timeout" INTEGER)',
    'CREATE TABLE "exec_cfg" (id INTEGER PRIMARY KEY AUTOINCREMENT, "env" TEXT, "poll_interval" REAL,'
    ' "communicator_desc" TEXT)',
    'CREATE TABLE "Test" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, "timestamp" DATETIME DEFAULT CURRENT_TIMESTAMP,'
    ' "gen_cfg_id" INTEGER, "exec_cfg_id" INTEGER, "i" INTEGER, "f" REAL, "s" TEXT, "z" BLOB,'
    ' "result.task_status" TEXT, "result.summary" TEXT, "result.payload" BLOB, "result.impl_schemas" TEXT,'
    ' "valid_flag" INTEGER)',
]


def table_info(path: Path, table: str) -> List[Tuple[Any, ...]]:
    with sqlite3.connect(path) as con:
        return con.execute(f'PRAGMA table_info("{table}")').fetchall()


def test_tables_match_the_hand_written_ddl(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.db"
    with sqlite3.connect(legacy) as con:
        for statement in LEGACY_DDL:
            con.execute(statement)
    record_run(tmp_path, make_record(1, "x", task_name="Test", parameters={"i": 1, "f": 1.5, "s": "x", "z": None}))
    ours = db_path(tmp_path)
    assert table_info(ours, "gen_cfg") == table_info(legacy, "gen_cfg")
    assert table_info(ours, "exec_cfg") == table_info(legacy, "exec_cfg")
    ours_test = table_info(ours, "Test")
    assert ours_test[: len(table_info(legacy, "Test"))] == table_info(legacy, "Test")
    assert [c[1] for c in ours_test[13:]][:2] == ["prov.runtime", "prov.launcher"]
    assert all(c[3] == 0 for c in ours_test)  # nothing NOT NULL, as upstream


UPSTREAM_TASK_DDL = (
    "CREATE TABLE IF NOT EXISTS TestWriteOutput(id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, gen_cfg_id INTEGER, exec_cfg_id INTEGER, "
    '"outfile_name" TEXT, "num_vals" INTEGER, "result.task_status" TEXT, "result.summary" TEXT, '
    '"result.payload" BLOB, "result.impl_schemas" TEXT, valid_flag INTEGER)'
)


@pytest.mark.parametrize("upstream_run_type", ["INTEGER", "TEXT"])
def test_we_write_into_a_database_upstream_created(tmp_path: Path, upstream_run_type: str) -> None:
    with sqlite3.connect(db_path(tmp_path)) as con:
        con.execute(
            "CREATE TABLE IF NOT EXISTS gen_cfg(id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT, experiment TEXT,"
            f" run {upstream_run_type}, date TEXT, lute_version REAL, task_timeout INTEGER)"
        )
        con.execute(
            "CREATE TABLE IF NOT EXISTS exec_cfg(id INTEGER PRIMARY KEY AUTOINCREMENT, env TEXT,"
            " poll_interval REAL, communicator_desc TEXT)"
        )
        con.execute(UPSTREAM_TASK_DDL)
        con.execute(
            "INSERT INTO gen_cfg (title, experiment, run, date, task_timeout) VALUES ('t', 'xpptut15', 12, 'd', 60)"
        )
        con.execute("INSERT INTO exec_cfg (env) VALUES ('LUTE_X=1')")
        con.execute(
            'INSERT INTO TestWriteOutput (gen_cfg_id, exec_cfg_id, "outfile_name", "result.task_status",'
            " \"result.payload\", valid_flag) VALUES (1, 1, 'upstream.txt', 'COMPLETED', 'upstream.txt', 1)"
        )
    assert latest_value(tmp_path, "TestWriteOutput", "outfile_name", experiment="xpptut15", run=12) == "upstream.txt"
    row_id = begin_run(tmp_path, make_record(12, "ours.txt"))
    finish_run(tmp_path, row_id, make_record(12, "ours.txt"))
    rows = list_rows(tmp_path, "TestWriteOutput")
    assert [row["outfile_name"] for row in rows] == ["ours.txt", "upstream.txt"]
    assert rows[0]["gen_cfg_id"] == 1  # the same header: upstream's gen_cfg row is shared
    assert rows[1]["prov.pid"] is None  # provenance columns were added; upstream's row has none
    assert latest_value(tmp_path, "TestWriteOutput", "outfile_name", run="12") == "ours.txt"
    assert read_latest_db_entry(str(tmp_path), "TestWriteOutput", "outfile_name", for_run=12) == "ours.txt"
