"""Where the database lives, how a connection to it is opened, and how names are made safe for SQL.

Owns the ``<work_dir>/lute.db`` location, the per-call peewee connection (WAL, busy timeout,
``BEGIN IMMEDIATE`` transactions for writers, read-only URI for readers), the translation of
every SQLite/peewee failure into a `DatabaseError` naming the file, and the checking of Task
(table) names. Must not hold a connection or any other state between calls (flows record from
many threads of one process), and must not know the table layout.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Tuple, Type, Union

from lute_kernel.errors import DatabaseError, InputError

if TYPE_CHECKING:
    import peewee

DB_FILENAME = "lute.db"
BUSY_TIMEOUT_S = 30.0
"""How long a connection waits for another process's write lock before giving up."""

SHARED_TABLES = ("gen_cfg", "exec_cfg")
_TASK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "BUSY_TIMEOUT_S",
    "DB_FILENAME",
    "SHARED_TABLES",
    "PathLike",
    "check_task_name",
    "db_path",
    "read_connection",
    "write_connection",
]


def db_path(work_dir: PathLike) -> Path:
    """Return the database file of a work directory: ``<work_dir>/lute.db``.

    Args:
        work_dir: The header's ``work_dir``.

    Returns:
        The path; the file may not exist yet.
    """
    return Path(work_dir) / DB_FILENAME


def check_task_name(task_name: str) -> str:
    """Return ``task_name`` if it is safe to use as a Task table name.

    Args:
        task_name: A Task name, e.g. ``TestWriteOutput``.

    Returns:
        The same name.

    Raises:
        InputError: The name is not an identifier (letters, digits, ``_``; not starting with a
            digit), names a shared table, or starts with ``sqlite_``.
    """
    if not _TASK_NAME.match(task_name):
        raise InputError(f"invalid Task name {task_name!r}: use letters, digits and '_' only")
    if task_name.lower() in SHARED_TABLES or task_name.lower().startswith("sqlite_"):
        raise InputError(f"invalid Task name {task_name!r}: reserved table name")
    return task_name


@contextmanager
def write_connection(work_dir: PathLike) -> Iterator[peewee.SqliteDatabase]:
    """Open the database for writing (creating it if needed), and close it on exit.

    The connection uses WAL and a busy timeout, and its ``atomic()`` blocks start with
    ``BEGIN IMMEDIATE``, so a writer takes the write lock before it reads the schema.

    Args:
        work_dir: The work directory; it must exist.

    Yields:
        An open peewee database.

    Raises:
        DatabaseError: The database cannot be opened.
    """
    import peewee  # here, not at the top: the checks before a launch use this module without it

    path = db_path(work_dir)
    if not path.parent.is_dir():
        raise DatabaseError(f"cannot write {path}: work_dir does not exist")
    _check_regular(path)
    database = peewee.SqliteDatabase(
        str(path),
        timeout=BUSY_TIMEOUT_S,
        lock_type="IMMEDIATE",
        pragmas=(
            ("busy_timeout", int(BUSY_TIMEOUT_S * 1000)),
            ("journal_mode", "wal"),
            ("synchronous", "normal"),
        ),
    )
    with _opened(database, path):
        yield database


@contextmanager
def read_connection(work_dir: PathLike, *, writable: bool = False) -> Iterator[peewee.SqliteDatabase]:
    """Open an existing database without ever creating it, and close it on exit.

    Args:
        work_dir: The work directory.
        writable: Open read-write (``mode=rw``: still never creates the file), e.g. to invalidate.

    Yields:
        An open peewee database.

    Raises:
        InputError: There is no database in ``work_dir``.
        DatabaseError: The database cannot be opened.
    """
    import peewee

    path = db_path(work_dir)
    if not os.path.lexists(path):
        raise InputError(f"no database at {path}")
    _check_regular(path)
    mode = "rw" if writable else "ro"
    database = peewee.SqliteDatabase(
        f"{path.resolve().as_uri()}?mode={mode}",
        uri=True,
        timeout=BUSY_TIMEOUT_S,
        pragmas=(("busy_timeout", int(BUSY_TIMEOUT_S * 1000)),),
    )
    with _opened(database, path):
        yield database


def _check_regular(path: Path) -> None:
    # SQLite would block on a FIFO, and gives "unable to open database file" for a directory.
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise DatabaseError(f"{path} is a symbolic link to nothing") from None
        return
    except OSError as err:
        raise DatabaseError(f"cannot open {path}: {err.strerror}") from err
    if stat.S_ISDIR(mode):
        raise DatabaseError(f"{path} is a directory, not a database")
    if not stat.S_ISREG(mode):
        raise DatabaseError(f"{path} is not a regular file")


def _failures() -> Tuple[Type[BaseException], ...]:
    """What opening, reading or writing a database can raise; each becomes a DatabaseError naming the file."""
    import peewee

    return (peewee.PeeweeException, sqlite3.Error, OverflowError, UnicodeError, OSError)


@contextmanager
def _opened(database: peewee.SqliteDatabase, path: Path) -> Iterator[peewee.SqliteDatabase]:
    failures = _failures()
    try:
        database.connect()
    except failures as err:
        raise DatabaseError(f"cannot open {path}: {err}") from err
    try:
        yield database
    except failures as err:
        raise DatabaseError(f"{path}: {err}") from err
    finally:
        database.close()
