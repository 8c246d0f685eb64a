"""What ``lute.db`` would refuse or silently change, found before anything is launched.

Owns the rules a run's parameters and header must meet to be written as one row (SQLite's
64-bit integers and UTF-8 text, names that can be columns and do not collide, SQLite's column and
length limits) and `check_recordable`, which applies them — and checks that the database file or
its directory can be written — without creating or changing anything. The writers apply the
same rules (`recordable_row`) under the write lock, where the table may have changed since.
Must not write: a probe file it creates in ``work_dir`` is removed at once.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import stat
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from lute_kernel.db.connection import BUSY_TIMEOUT_S, PathLike, check_task_name, db_path
from lute_kernel.db.flatten import SqlValue, flatten_items, to_sql_value
from lute_kernel.db.layout import GEN_CFG_COLUMNS, TASK_LEADING_COLUMNS, TASK_TRAILING_COLUMNS, is_reserved
from lute_kernel.errors import InputError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SQLITE_HEADER = b"SQLite format 3\x00"
HEADER_KEY = "lute_config"
"""The parameters key holding the shared header; it goes to ``gen_cfg``, not the Task table."""

MAX_LISTED = 5
"""A refusal names at most this many problems, then says how many more there are."""

__all__ = [
    "HEADER_KEY",
    "INT64_MAX",
    "INT64_MIN",
    "Unrecordable",
    "check_database_file",
    "check_recordable",
    "header_row",
    "recordable_row",
    "sqlite_limits",
]


class Unrecordable(ValueError):
    """Values or names the database would refuse, or would store as something else."""


class SqliteLimits(NamedTuple):
    """The limits of the SQLite library this process links (``sqlite3_limit``)."""

    columns: int
    length: int
    sql_length: int


@functools.lru_cache(maxsize=1)
def sqlite_limits() -> SqliteLimits:
    """Return this SQLite's column, value-length and statement-length limits (compile-time defaults before 3.11)."""
    with sqlite3.connect(":memory:") as probe:
        if not hasattr(probe, "getlimit"):  # Python < 3.11: SQLite's defaults
            return SqliteLimits(2000, 1_000_000_000, 1_000_000_000)
        return SqliteLimits(
            probe.getlimit(sqlite3.SQLITE_LIMIT_COLUMN),
            probe.getlimit(sqlite3.SQLITE_LIMIT_LENGTH),
            probe.getlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH),
        )


def _shown(text: str, limit: int = 40) -> str:
    shown = repr(text)  # escapes NUL and lone surrogates, so the message itself can be printed
    return shown if len(shown) <= limit else shown[: limit - 4] + "…" + shown[-3:]


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _value_problem(value: SqlValue) -> Optional[str]:
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        shown = str(value) if value.bit_length() < 200 else f"a {value.bit_length()}-bit integer"
        return f"{shown} is outside SQLite's 64-bit integer range"
    if isinstance(value, str) and not _encodes(value):
        return f"{_shown(value)} holds a lone surrogate (not UTF-8)"
    return None


def _name_problem(name: str) -> Optional[str]:
    if not name:
        return "an empty key cannot be a column name"
    if "\x00" in name:
        return "the key holds a NUL character"
    if not _encodes(name):
        return "the key holds a lone surrogate (not UTF-8)"
    if is_reserved(name):
        return "is a reserved column (id, timestamp, gen_cfg_id, exec_cfg_id, valid_flag, result.*, prov.*)"
    return None


def _refuse(problems: Sequence[str]) -> None:
    if problems:
        more = len(problems) - MAX_LISTED
        listed = "; ".join(problems[:MAX_LISTED]) + (f"; … and {more:,} more" if more > 0 else "")
        raise Unrecordable(listed)


def _size(value: SqlValue) -> int:
    return len(value.encode("utf-8", "replace")) if isinstance(value, str) else 9


def recordable_row(parameters: Mapping[str, Any], existing: Iterable[str] = ()) -> Dict[str, SqlValue]:
    """Flatten Task parameters into the columns of one row, refusing what the table cannot hold as given.

    Args:
        parameters: The Task's parameters, JSON-able and nested; a ``lute_config`` key is skipped.
        existing: The column names the Task table has now (empty when there is no table).

    Returns:
        ``{column: SQL value}``, as `flatten` gives it.

    Raises:
        Unrecordable: Every problem found (at most `MAX_LISTED` named): an integer outside int64,
            text that is not UTF-8, an empty name or one holding NUL, a reserved name, two
            spellings of one column, names differing only in case (from each other or from an
            existing column), more columns than SQLite allows, a row longer than SQLite allows.
    """
    problems: List[str] = []
    existing_by_lower = {name.lower(): name for name in existing}
    seen: Dict[str, str] = {}
    row: Dict[str, SqlValue] = {}
    for name, value in flatten_items({k: v for k, v in parameters.items() if k != HEADER_KEY}):
        label = f"parameter {_shown(name)}"
        problem = _name_problem(name) or _value_problem(value)
        lowered = name.lower()
        if problem is None and lowered in seen:
            first = seen[lowered]
            problem = (
                "is given twice (two spellings flatten to this column, e.g. 'a.b' and a nested 'a': {'b': …})"
                if first == name
                else f"differs only in case from parameter {_shown(first)} (SQLite column names ignore case)"
            )
        if problem is None and existing_by_lower.get(lowered, name) != name:
            problem = f"differs only in case from the table's column {_shown(existing_by_lower[lowered])}"
        if problem is not None:
            problems.append(f"{label}: {problem}")
        seen.setdefault(lowered, name)
        row[name] = value
    _refuse(problems)
    limits = sqlite_limits()
    fixed = [name for name, _ in (*TASK_LEADING_COLUMNS, *TASK_TRAILING_COLUMNS)]
    total = len({name.lower() for name in (*fixed, *existing_by_lower, *row)})
    if total > limits.columns:
        raise Unrecordable(
            f"the Task table would have {total:,} columns ({len(row):,} from the parameters); "
            f"SQLite allows at most {limits.columns:,}"
        )
    if sum(_size(value) for value in row.values()) > limits.length:
        raise Unrecordable(f"the parameters are longer than SQLite's row limit of {limits.length:,} bytes")
    if sum(len(name.encode("utf-8")) + 16 for name in row) > limits.sql_length // 2:
        raise Unrecordable("the parameter names are too long for SQLite's statement length limit")
    return row


def header_row(header: Mapping[str, Any]) -> Dict[str, SqlValue]:
    """Return the ``gen_cfg`` values of a header, refusing what the table cannot hold as given.

    Raises:
        Unrecordable: A header value is an integer outside int64 or text that is not UTF-8.
    """
    row = {name: to_sql_value(header.get(name)) for name, _ in GEN_CFG_COLUMNS}
    problems = [f"header {name}: {p}" for name, value in row.items() if (p := _value_problem(value))]
    _refuse(problems)
    return row


def _probe_directory(work_dir: str) -> None:
    # SQLite creates lute.db and its -wal/-shm files next to it: try creating (and remove) a file.
    try:
        handle, probe = tempfile.mkstemp(prefix=".lute-db-probe-", dir=work_dir)
    except OSError as err:
        raise InputError(f"cannot create the database in {work_dir}: {err.strerror or err}") from None
    os.close(handle)
    os.unlink(probe)


def check_database_file(work_dir: PathLike) -> None:
    """Raise unless ``<work_dir>/lute.db`` can be opened for writing, or created; change nothing.

    Raises:
        InputError: work_dir is missing or not a directory, files cannot be created in it (e.g.
            ``/proc``), or lute.db (or its ``-wal``/``-shm`` file) is a directory, not a regular
            file, unreadable, read-only, not a SQLite database, or unreadable as one.
    """
    path = db_path(work_dir)
    if not os.path.isdir(work_dir):
        raise InputError(f"cannot record in {path}: work_dir {str(work_dir)!r} is not a directory")
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = candidate.stat().st_mode
        except FileNotFoundError:
            if os.path.islink(candidate):
                raise InputError(f"{candidate} is a symbolic link to nothing") from None
            continue
        except OSError as err:
            raise InputError(f"cannot use {candidate}: {err.strerror or err}") from None
        kind = "a directory" if stat.S_ISDIR(mode) else None if stat.S_ISREG(mode) else "not a regular file"
        if kind:
            raise InputError(f"{candidate} is {kind}, not a database")
        if not os.access(candidate, os.R_OK | os.W_OK):
            raise InputError(f"{candidate} is not readable and writable by this user")
    _probe_directory(str(work_dir))
    if path.exists() and path.stat().st_size > 0:
        try:
            with open(path, "rb") as db_file:
                magic = db_file.read(len(SQLITE_HEADER))
        except OSError as err:
            raise InputError(f"cannot read {path}: {err.strerror or err}") from None
        if magic != SQLITE_HEADER:
            raise InputError(f"{path} is not a SQLite database")


_READ_FAILURES = (sqlite3.Error, OverflowError, UnicodeError, OSError)


def _existing_columns(work_dir: PathLike, task_name: str) -> Tuple[str, ...]:
    # The sqlite3 module itself, read-only (never creates the file), as the DB layer's readers open it,
    # with the same messages: peewee is imported only to write, while the worker starts.
    path = db_path(work_dir)
    if not path.exists():
        return ()
    try:
        database = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    except _READ_FAILURES as err:
        raise InputError(f"cannot use the database: cannot open {path}: {err}") from None
    try:
        database.execute('SELECT name FROM "main".sqlite_master').fetchall()  # a corrupt file fails here
        rows = database.execute(f'PRAGMA "main".table_info("{task_name}")').fetchall()  # a checked name
    except _READ_FAILURES as err:
        raise InputError(f"cannot use the database: {path}: {err}") from None
    finally:
        database.close()
    return tuple(str(row[1]) for row in rows)


def check_recordable(
    work_dir: PathLike, task_name: str, parameters: Mapping[str, Any], *, header: Optional[Mapping[str, Any]] = None
) -> None:
    """Raise `InputError` (exit 2) if this run's row could not be written as given; call before launch.

    Never creates or changes ``lute.db``.

    Args:
        work_dir: The header's ``work_dir``.
        task_name: The Task (table) name.
        parameters: The Task's parameters, JSON-able and nested (``lute_config`` is taken as the
            header when ``header`` is not given).
        header: The config header (``gen_cfg`` values).

    Raises:
        InputError: One line naming the database and every problem (see `recordable_row`,
            `header_row`, `check_database_file`).
    """
    check_task_name(task_name)
    check_database_file(work_dir)
    existing = _existing_columns(work_dir, task_name)
    if header is None and isinstance(parameters.get(HEADER_KEY), Mapping):
        header = parameters[HEADER_KEY]
    try:
        recordable_row(parameters, existing)
        header_row(header or {})
    except Unrecordable as err:
        raise InputError(f"{task_name} cannot be recorded in {db_path(work_dir)}: {err}") from None
