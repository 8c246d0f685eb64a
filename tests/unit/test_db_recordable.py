"""check_recordable refuses, before launch, exactly what lute.db would refuse or silently change.

The oracle is SQLite itself: a naive writer (plain sqlite3, the flattened names as columns) tries
the same row; check_recordable must refuse a mapping if and only if that naive write fails, reads
back something else, or the mapping breaks a rule of ours: a name of a column the kernel writes
itself (``id``, ``valid_flag``, ``result.*``, ``prov.*``… in any case), an empty name, two spellings
of one column (SQLite would keep one value and drop the other without a word).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lute_kernel.db import RunRecord, begin_run, check_recordable, db_path, list_rows, record_run
from lute_kernel.db.flatten import flatten, flatten_items
from lute_kernel.db.layout import TASK_LEADING_COLUMNS, TASK_TRAILING_COLUMNS
from lute_kernel.db.recordable import sqlite_limits
from lute_kernel.errors import DatabaseError, InputError

FIXED = [name for name, _ in (*TASK_LEADING_COLUMNS, *TASK_TRAILING_COLUMNS)]
HEADER = {"experiment": "xpptut15", "run": 14}


def record(parameters: Any, **changes: Any) -> RunRecord:
    fields: Dict[str, Any] = {
        "task_name": "Test",
        "header": HEADER,
        "parameters": parameters,
        "task_status": "COMPLETED",
        "summary": "",
        "payload": None,
    }
    fields.update(changes)
    return RunRecord(**fields)


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def naive_write_keeps(pairs: Sequence[Tuple[str, Any]], existing: Sequence[str]) -> bool:
    """Write the pairs with plain sqlite3 into a table like ours; True if every value reads back as given."""
    if len({name for name, _ in pairs}) != len(pairs):
        return False  # SQLite keeps one of two same-named values and drops the other silently
    con = sqlite3.connect(":memory:")
    try:
        # One CREATE for the table as it would be after adding the new columns: a name SQLite
        # takes for an existing one (case) fails here as ALTER TABLE ADD COLUMN would.
        table = [*FIXED[:4], *existing, *(n for n, _ in pairs if n not in existing and n not in FIXED), *FIXED[4:]]
        con.execute(f"CREATE TABLE t ({', '.join(quoted(n) + ' BLOB' for n in table)})")
        if pairs:
            names = ", ".join(quoted(name) for name, _ in pairs)
            marks = ", ".join("?" for _ in pairs)
            con.execute(f"INSERT INTO t ({names}) VALUES ({marks})", [value for _, value in pairs])
            back = con.execute(f"SELECT {names} FROM t").fetchone()
            return list(back) == [value for _, value in pairs]
        return True
    except (sqlite3.Error, OverflowError, UnicodeError, ValueError):
        return False
    finally:
        con.close()


KERNEL_COLUMNS = {name.lower() for name in FIXED}


def breaks_our_rules(pairs: Sequence[Tuple[str, Any]]) -> bool:
    return any(
        not name or name.lower() in KERNEL_COLUMNS or name.lower().startswith(("result.", "prov.")) for name, _ in pairs
    )


KEYS = st.one_of(
    st.sampled_from(
        [
            *("a", "A", "b", "a.b", "a[0]", "id", "ID", "valid_flag", "Timestamp", "gen_cfg_id", "EXEC_CFG_ID"),
            *("result", "result.x", "Prov.pid", "prov", "", "x\x00y", "k\ud800", "é", "a.B", 'q"uote'),
        ]
    ),
    st.text(alphabet="abAB.[]0", min_size=1, max_size=4),
)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30]),
    st.floats(allow_nan=False),
    st.text(max_size=4),
    st.sampled_from(["nul\x00inside", "lone\ud800", "\udfff", "\U0001f600"]),
)
VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(KEYS, children, max_size=3)),
    max_leaves=8,
)
PARAMETERS = st.dictionaries(KEYS, VALUES, max_size=5)
EXISTING = st.lists(st.sampled_from(["a", "B", "a.b", "c", "é"]), unique_by=str.lower, max_size=2)


def dump(work_dir: Path) -> List[str]:
    if not db_path(work_dir).exists():
        return []
    with sqlite3.connect(db_path(work_dir)) as con:
        return list(con.iterdump())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parameters=PARAMETERS, existing=EXISTING)
def test_check_recordable_refuses_exactly_what_the_database_would(
    parameters: Dict[str, Any], existing: List[str]
) -> None:
    pairs = flatten_items(parameters)
    should_refuse = breaks_our_rules(pairs) or not naive_write_keeps(pairs, existing)
    with tempfile.TemporaryDirectory() as scratch:
        work_dir = Path(scratch)
        if existing:
            record_run(work_dir, record({name: None for name in existing}))
        before = dump(work_dir)
        try:
            check_recordable(work_dir, "Test", parameters, header=HEADER)
        except InputError as err:
            event("refused")
            assert should_refuse, f"refused a recordable mapping: {err}"
            assert str(err).startswith(f"Test cannot be recorded in {db_path(work_dir)}: ")
            assert "\n" not in str(err)
            with pytest.raises(DatabaseError, match="not recorded in"):
                begin_run(work_dir, record(parameters))
            assert dump(work_dir) == before, "a refused row changed the database"
            return
        event("accepted")
        assert not should_refuse, f"accepted {parameters!r}, which SQLite would refuse or change"
        assert dump(work_dir) == before  # checking wrote nothing
        row_id = record_run(work_dir, record(parameters))
        (row,) = [row for row in list_rows(work_dir, "Test") if row["id"] == row_id]
        assert {name: row[name] for name in flatten(parameters)} == flatten(parameters)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"n": 2**63}, "parameter 'n': 9223372036854775808 is outside SQLite's 64-bit integer range"),
        ({"deep": {"er": [0, {"n": -(2**63) - 1}]}}, "parameter 'deep.er[1].n': -9223372036854775809 is outside"),
        ({"n": 2**400}, "parameter 'n': a 401-bit integer is outside"),
        ({"a": 1, "A": 2}, "parameter 'A': differs only in case from parameter 'a'"),
        ({"x\x00": 1}, "parameter 'x\\x00': the key holds a NUL character"),
        ({"k\ud800": 1}, "the key holds a lone surrogate"),
        ({"s": "bad\udc80"}, "parameter 's': 'bad\\udc80' holds a lone surrogate"),
        ({"valid_flag": 1}, "parameter 'valid_flag': is a reserved column"),
        ({"ID": 1}, "parameter 'ID': is a reserved column"),
        ({"result": {"payload": 1}}, "parameter 'result.payload': is a reserved column"),
        ({"prov.whatever": 1}, "is a reserved column"),
        ({"a.b": 1, "a": {"b": 2}}, "parameter 'a.b': is given twice (two spellings flatten to this column"),
        ({"a[0]": 1, "a": [2]}, "parameter 'a[0]': is given twice"),
        ({"": 1}, "an empty key cannot be a column name"),
    ],
)
def test_refusals_name_the_parameter_and_why(tmp_path: Path, parameters: Dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as info:
        check_recordable(tmp_path, "Test", parameters)
    assert message in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_long_list_of_problems_is_summarised(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        check_recordable(tmp_path, "Test", {f"n{i}": 2**64 for i in range(40)})
    assert str(info.value).endswith("; … and 35 more")


def test_the_header_is_checked_too(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="header run: 9223372036854775808 is outside"):
        check_recordable(tmp_path, "Test", {}, header={"run": 2**63})
    with pytest.raises(InputError, match=r"header experiment: .* lone surrogate"):
        check_recordable(tmp_path, "Test", {"lute_config": {"experiment": "x\udcff"}})
    with pytest.raises(DatabaseError, match="header run"):
        record_run(tmp_path, record({}, header={"run": 2**63}))
    assert list(tmp_path.iterdir()) == []


def test_case_clash_with_an_existing_column(tmp_path: Path) -> None:
    record_run(tmp_path, record({"Energy": 1.0}))
    check_recordable(tmp_path, "Test", {"Energy": 2.0})
    with pytest.raises(InputError, match="parameter 'energy': differs only in case from the table's column 'Energy'"):
        check_recordable(tmp_path, "Test", {"energy": 2.0})
    with pytest.raises(DatabaseError, match="differs only in case"):
        record_run(tmp_path, record({"energy": 2.0}))


def test_the_column_limit_counts_fixed_and_existing_columns(tmp_path: Path) -> None:
    room = sqlite_limits().columns - len(FIXED)
    full = {f"p{i}": i for i in range(room)}
    check_recordable(tmp_path, "Test", full)
    with pytest.raises(InputError, match=f"would have {room + len(FIXED) + 1:,} columns .* at most 2,000"):
        check_recordable(tmp_path, "Test", {**full, "one_more": 1})
    assert naive_write_keeps(list(full.items()), [])
    assert not naive_write_keeps(list({**full, "one_more": 1}.items()), [])
    row_id = record_run(tmp_path, record(full))  # the table now has exactly SQLite's maximum
    assert list_rows(tmp_path, "Test", limit=1)[0]["id"] == row_id
    check_recordable(tmp_path, "Test", {"p0": 1})
    with pytest.raises(InputError, match="would have 2,001 columns"):
        check_recordable(tmp_path, "Test", {"one_more": 1})  # the existing columns count
    with pytest.raises(DatabaseError, match="would have 2,001 columns"):
        record_run(tmp_path, record({"one_more": 1}))


def test_values_longer_than_sqlite_allows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limits = sqlite_limits()
    monkeypatch.setattr("lute_kernel.db.recordable.sqlite_limits", lambda: limits._replace(length=1000))
    with pytest.raises(InputError, match="longer than SQLite's row limit of 1,000 bytes"):
        check_recordable(tmp_path, "Test", {"s": "x" * 1001})


# --- the database file and its directory ----------------------------------------------------


def test_checking_creates_nothing(tmp_path: Path) -> None:
    check_recordable(tmp_path, "Test", {"a": 1})
    assert list(tmp_path.iterdir()) == []
    db_path(tmp_path).touch()  # an empty file is an empty SQLite database
    check_recordable(tmp_path, "Test", {"a": 1})
    assert db_path(tmp_path).stat().st_size == 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "is a directory, not a database"),
        (lambda p: os.mkfifo(p), "is not a regular file"),
        (lambda p: p.write_bytes(b"not a database at all, just some text\n" * 4), "is not a SQLite database"),
        (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\xff" * 84 + b"garbage" * 200), "cannot use the database"),
        (lambda p: p.symlink_to(p.parent / "nowhere"), "is a symbolic link to nothing"),
        (lambda p: p.with_name("lute.db-wal").mkdir(), "lute.db-wal is a directory"),
    ],
    ids=["directory", "fifo", "text", "corrupt", "dangling-link", "wal-directory"],
)
def test_unusable_database_files_are_refused(tmp_path: Path, make: Any, message: str) -> None:
    make(db_path(tmp_path))
    before = sorted(tmp_path.iterdir())
    with pytest.raises(InputError, match=message):
        check_recordable(tmp_path, "Test", {"a": 1})
    assert sorted(tmp_path.iterdir()) == before
    with pytest.raises(DatabaseError):  # and a writer says why instead of a traceback
        record_run(tmp_path, record({"a": 1}))


NOBODY = 65534
REPO = Path(__file__).resolve().parents[2]


def check_as_a_user(work_dir: Path) -> str:
    """Run check_recordable in a child process as an ordinary user (nobody, when the tests run as root)."""
    code = "import sys; from lute_kernel.db import check_recordable; check_recordable(sys.argv[1], 'Test', {'a': 1})"
    argv = [sys.executable, "-c", code, str(work_dir)]
    if os.geteuid() == 0:
        argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]
    result = subprocess.run(argv, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    return result.stderr.strip().splitlines()[-1] if result.returncode else "accepted"


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="root, and no setpriv to drop it")
def test_unreadable_or_read_only_database_and_directory_are_refused() -> None:
    work_dir = Path(tempfile.mkdtemp(prefix="lute-ro-"))  # not under root's 0700 pytest directory
    try:
        record_run(work_dir, record({"a": 1}))
        for path in (work_dir, *work_dir.iterdir()):
            if os.geteuid() == 0:
                os.chown(path, NOBODY, NOBODY)
        work_dir.chmod(0o755)
        assert check_as_a_user(work_dir) == "accepted"
        for mode in (stat.S_IRUSR, 0):
            db_path(work_dir).chmod(mode)
            assert check_as_a_user(work_dir).endswith("lute.db is not readable and writable by this user")
        db_path(work_dir).chmod(0o644)
        work_dir.chmod(0o555)
        assert check_as_a_user(work_dir).endswith(f"cannot create the database in {work_dir}: Permission denied")
    finally:
        work_dir.chmod(0o755)
        shutil.rmtree(work_dir)


@pytest.mark.parametrize("work_dir", ["/proc", "/proc/self"])
def test_a_work_dir_where_nothing_can_be_created(work_dir: str) -> None:
    with pytest.raises(InputError, match=f"cannot create the database in {work_dir}"):
        check_recordable(work_dir, "Test", {"a": 1})


def test_a_missing_work_dir(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a directory"):
        check_recordable(tmp_path / "absent", "Test", {})


def test_bad_task_names(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="invalid Task name"):
        check_recordable(tmp_path, "Te st", {})
    with pytest.raises(InputError, match="reserved table name"):
        check_recordable(tmp_path, "GEN_CFG", {})
