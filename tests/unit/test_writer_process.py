"""The run's rows written by the writer process are the rows this process would write, errors included.

The writer process only moves ``lute_kernel.db.writer``'s calls to another process: the same rows
(generated records, through the process and here, compared column by column), the same errors
(type and message), a fall-back to writing here when it is gone or a record would not survive
JSON, and nothing left running once the ``run`` command ends. Each case runs in a fresh
interpreter: the process is only ever forked from a single-threaded one that has not imported peewee.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
from conftest import REPO, json_values
from hypothesis import given, settings
from hypothesis import strategies as st

from lute_kernel.db import writer_process
from lute_kernel.db.records import RunRecord
from lute_kernel.db.row_json import decode_fields, encode_fields

HEADER = {"title": "t", "experiment": "xpptut15", "run": 14, "date": "2026/11/22", "task_timeout": 60}

CHILD = r"""
import json, os, sys
from datetime import datetime
from lute_kernel.db import writer_process
from lute_kernel.db.row_json import decode_fields, encode_fields
cases = json.load(open(sys.argv[1]))
if sys.argv[3] == "nofork":  # a limit on processes: fork fails
    def _no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")
    os.fork = _no_fork
out = {"started": writer_process.start() if sys.argv[3] != "here" else False, "results": []}
if sys.argv[3] == "start" and sys.argv[4] == "kill":
    os.kill(writer_process._process.pid, 9)
    os.waitpid(writer_process._process.pid, 0)
for case in cases:
    fields = dict(case["record"])
    for name in ("start", "end"):
        if fields.get(name):
            fields[name] = datetime.fromisoformat(fields[name])
    try:
        if case.get("soon"):
            row = writer_process.begin_run_soon(sys.argv[2], fields).row_id()
        else:
            row = writer_process.begin_run(sys.argv[2], fields)
        if case.get("finish"):
            final = {**fields, "task_status": case["finish"]}
            writer_process.finish_run(sys.argv[2], row, final)
            if case.get("twice"):
                writer_process.finish_run(sys.argv[2], row, final)
        out["results"].append(["ok", row])
    except Exception as exc:
        out["results"].append([type(exc).__name__, str(exc).replace(sys.argv[2], "<work_dir>")])
out["still_there"] = writer_process.running()
out["peewee_here"] = "peewee" in sys.modules
print(json.dumps(out))
"""


def _write(cases: List[Dict[str, Any]], work_dir: Path, mode: str, kill: bool = False) -> Dict[str, Any]:
    """Run CHILD: write ``cases`` into ``work_dir`` through the writer process (``start``) or here (``here``)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    spec = work_dir.parent / f"{work_dir.name}.json"
    spec.write_text(json.dumps(cases))
    env = {k: v for k, v in os.environ.items() if k != "LUTE_NO_WRITER_PROCESS"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(spec), str(work_dir), mode, "kill" if kill else "keep"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: Dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def _tables(work_dir: Path) -> Dict[str, List[Tuple[Any, ...]]]:
    path = work_dir / "lute.db"
    if not path.exists():
        return {}
    with sqlite3.connect(path) as db:
        names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        out = {}
        for name in names:
            cursor = db.execute(f'SELECT * FROM "{name}" ORDER BY rowid')
            columns = [d[0] for d in cursor.description]
            keep = [i for i, column in enumerate(columns) if column not in ("timestamp",)]
            out[name] = [tuple(columns[i] for i in keep), *(tuple(row[i] for i in keep) for row in cursor)]
        out["schema"] = sorted(db.execute("SELECT name, sql FROM sqlite_master"))
        return out


def _record(**changes: Any) -> Dict[str, Any]:
    fields: Dict[str, Any] = {
        "task_name": "Test",
        "header": HEADER,
        "parameters": {"outfile_name": "out.h5", "n": {"m": [1, 2]}},
        "task_status": "RUNNING",
        "summary": "",
        "payload": None,
        "argv": ["python", "-m", "lute_kernel.worker"],
        "runtime": "local",
        "pid": 4242,
        "pid_start": 17,
        "host": "sdfmilan001",
        "start": "2026-12-02T10:00:00+00:00",
    }
    fields.update(changes)
    return fields


_values = json_values()
_parameters = st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), _values, max_size=5)


@settings(max_examples=5, deadline=None)
@given(st.lists(st.tuples(_parameters, _values, st.text(max_size=20)), min_size=1, max_size=4))
def test_generated_rows_through_the_process_equal_the_rows_written_here(
    tmp_path_factory: pytest.TempPathFactory, runs: List[Tuple[Dict[str, Any], Any, str]]
) -> None:
    cases = [
        {"record": _record(parameters=params, payload=payload, summary=summary), "finish": "COMPLETED", "soon": i % 2}
        for i, (params, payload, summary) in enumerate(runs)
    ]
    base = tmp_path_factory.mktemp("rows")
    there = _write(cases, base / "there", "start")
    here = _write(cases, base / "here", "here")
    assert there["started"] and there["still_there"] and not there["peewee_here"]
    assert not here["started"]
    assert there["results"] == here["results"]  # the same ids, or the same refusals
    assert _tables(base / "there") == _tables(base / "here")


@pytest.mark.parametrize(
    "case",
    [
        {"record": _record(task_name="1bad")},  # InputError before the file is opened
        {"record": _record(), "finish": "RUNNING"},  # ValueError: not a final status
        {"record": _record(), "finish": "FAILED", "twice": True},  # DatabaseError: a final row never changes
        {"record": _record(parameters={"id": 3})},  # a reserved column
    ],
    ids=["bad-name", "not-final", "finished-twice", "reserved-column"],
)
def test_the_writer_raises_what_writing_here_raises(tmp_path: Path, case: Dict[str, Any]) -> None:
    there = _write([case], tmp_path / "there", "start")
    here = _write([case], tmp_path / "here", "here")
    assert there["results"] == here["results"]
    assert there["results"][0][0] != "ok"


def test_a_writer_process_that_is_gone_leaves_the_rows_to_this_process(tmp_path: Path) -> None:
    cases = [{"record": _record(), "finish": "COMPLETED"}, {"record": _record(), "finish": "FAILED"}]
    there = _write(cases, tmp_path / "there", "start", kill=True)
    assert there["started"] and not there["still_there"] and there["peewee_here"]
    assert [r[0] for r in there["results"]] == ["ok", "ok"]
    assert _tables(tmp_path / "there") == _tables(_written_here(cases, tmp_path / "here"))


def test_when_no_process_can_be_forked_the_rows_are_written_here(tmp_path: Path) -> None:
    cases = [{"record": _record(), "finish": "COMPLETED"}]
    there = _write(cases, tmp_path / "there", "nofork")
    assert not there["started"] and there["results"] == [["ok", 1]] and there["peewee_here"]
    assert _tables(tmp_path / "there") == _tables(_written_here(cases, tmp_path / "here"))


def _written_here(cases: List[Dict[str, Any]], work_dir: Path) -> Path:
    _write(cases, work_dir, "here")
    return work_dir


def _plain_record(**changes: Any) -> Dict[str, Any]:
    return _record(**{"start": datetime(2026, 12, 2, 10, tzinfo=timezone.utc), **changes})


def test_records_json_would_change_are_written_here() -> None:
    assert encode_fields(_plain_record()) is not None
    for changes in (
        {"parameters": {"a": {1: "int key"}}},
        {"payload": {"a": {"b", "c"}}},
        {"header": {**HEADER, "date": datetime(2026, 1, 1)}},
        {"start": "2026-12-02T10:00:00"},  # not a datetime: the writer here says what is wrong with it
    ):
        assert encode_fields(_plain_record(**changes)) is None, changes


@settings(max_examples=50, deadline=None)
@given(_parameters, _values)
def test_an_encoded_record_decodes_to_the_same_record(params: Dict[str, Any], payload: Any) -> None:
    record = _plain_record(parameters=params, payload=payload, env={"LUTE_X": "1"}, env_allowlist=("A*",))
    encoded = encode_fields(record)
    assert encoded is not None
    decoded = decode_fields(json.loads(json.dumps(encoded)))
    for name in ("argv", "env_allowlist"):
        assert list(getattr(decoded, name)) == list(record[name])
    same = {name: record[name] for name in ("argv", "env_allowlist")}
    assert RunRecord(**{**decoded.__dict__, **same}) == RunRecord(**record)


def test_without_the_process_nothing_is_forked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUTE_NO_WRITER_PROCESS", "1")
    assert writer_process.start() is False
    assert not writer_process.running()


def _processes_with_cmdline(argv: List[str]) -> List[int]:
    wanted = "\0".join(argv).encode() + b"\0"
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if handle.read() == wanted:
                        found.append(int(entry))
            except OSError:
                pass
    return found


def test_a_run_records_through_the_process_and_leaves_nothing_running(
    make_config: Callable[..., Path], work_dir: Path, tmp_path: Path
) -> None:
    config = make_config({"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}}})
    code = "import sys; sys.argv = ['lute-kernel', *sys.argv[1:]]\nfrom lute_kernel.cli import main; main()\n"
    argv = [sys.executable, "-c", code, "run", "Test", "-c", str(config)]
    env = {k: v for k, v in os.environ.items() if k not in ("LUTE_NO_WRITER_PROCESS", "LUTE_WARM")}
    env.update({"LUTE_WARM": "0", "XDG_CACHE_HOME": str(tmp_path / "cache")})
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO) as proc:
        _, err = proc.communicate(timeout=120)  # its output closes when the kernel ends: the writer holds none of it
    assert proc.returncode == 0, err[-2000:]
    deadline = time.monotonic() + 10
    while _processes_with_cmdline(argv) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with_cmdline(argv) == []  # the writer ended with the kernel
    with sqlite3.connect(work_dir / "lute.db") as db:
        status, pid, pid_start = db.execute(
            'SELECT "result.task_status", "prov.pid", "prov.pid_start" FROM Test'
        ).fetchone()
    assert status == "COMPLETED" and pid == proc.pid and pid_start > 0  # the kernel's identity, not the writer's


SOON = r"""
import json, sqlite3, sys, time
from lute_kernel.db import writer_process
from lute_kernel.db.row_json import decode_fields, encode_fields
fields = json.loads(sys.argv[2])
assert writer_process.start()
first = writer_process.begin_run_soon(sys.argv[1], fields)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:  # written before anyone waits for it: the write overlaps the spawn
    try:
        with sqlite3.connect(sys.argv[1] + "/lute.db") as db:
            if db.execute('SELECT count(*) FROM "Test"').fetchone()[0]:
                break
    except sqlite3.Error:
        pass
    time.sleep(0.01)
second = writer_process.begin_run_soon(sys.argv[1], fields)
print(second.row_id(), first.row_id())
"""


def test_a_row_handed_over_early_is_written_before_it_is_awaited_and_answers_in_order(tmp_path: Path) -> None:
    fields = _record(start=None)
    done = subprocess.run(
        [sys.executable, "-c", SOON, str(tmp_path), json.dumps(fields)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["2", "1"]
