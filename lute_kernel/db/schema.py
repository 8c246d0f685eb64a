"""The table layout of ``lute.db`` (upstream LUTE's v1 "seed" schema plus provenance columns).

Owns the column names and types of ``gen_cfg``, ``exec_cfg`` and the per-Task tables, their
creation, and schema evolution (``ALTER TABLE ADD COLUMN`` for parameters not seen before). Must
not open connections or begin transactions: callers pass an open peewee database, inside the
transaction that also writes the row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Dict, List, Tuple

from lute_kernel.db.connection import check_task_name, quote
from lute_kernel.errors import DatabaseError

GEN_CFG_COLUMNS: Tuple[Tuple[str, str], ...] = (
    ("title", "TEXT"),
    ("experiment", "TEXT"),
    ("run", "INTEGER"),
    ("date", "TEXT"),
    ("lute_version", "TEXT"),
    ("task_timeout", "INTEGER"),
)
"""The header keys kept in ``gen_cfg``; other header keys (``work_dir``…) are not stored."""

EXEC_CFG_COLUMNS: Tuple[Tuple[str, str], ...] = (
    ("env", "TEXT"),
    ("poll_interval", "REAL"),
    ("communicator_desc", "TEXT"),
)

TASK_LEADING_COLUMNS: Tuple[Tuple[str, str], ...] = (
    ("id", "INTEGER PRIMARY KEY AUTOINCREMENT"),
    ("timestamp", "DATETIME DEFAULT CURRENT_TIMESTAMP"),
    ("gen_cfg_id", "INTEGER"),
    ("exec_cfg_id", "INTEGER"),
)
"""Columns every Task table starts with; the flattened parameters follow them."""

TASK_TRAILING_COLUMNS: Tuple[Tuple[str, str], ...] = (
    ("result.task_status", "TEXT"),
    ("result.summary", "TEXT"),
    ("result.payload", "BLOB"),
    ("result.impl_schemas", "TEXT"),
    ("valid_flag", "INTEGER"),
    ("prov.runtime", "TEXT"),
    ("prov.launcher", "TEXT"),
    ("prov.image", "TEXT"),
    ("prov.image_sha256", "TEXT"),
    ("prov.kernel_version", "TEXT"),
    ("prov.argv", "TEXT"),
    ("prov.host", "TEXT"),
    ("prov.start", "TEXT"),
    ("prov.end", "TEXT"),
    ("prov.exit_code", "INTEGER"),
    ("prov.config", "TEXT"),
    ("prov.site", "TEXT"),
    ("prov.ranks", "INTEGER"),
)
"""Columns every Task table has after its parameters (result, validity, provenance)."""

RESERVED_COLUMNS = frozenset(name.lower() for name, _ in TASK_LEADING_COLUMNS + TASK_TRAILING_COLUMNS)

__all__ = [
    "EXEC_CFG_COLUMNS",
    "GEN_CFG_COLUMNS",
    "RESERVED_COLUMNS",
    "TASK_LEADING_COLUMNS",
    "TASK_TRAILING_COLUMNS",
    "check_parameter_columns",
    "ensure_shared_tables",
    "ensure_task_table",
    "insert_row",
    "insert_unique",
    "table_columns",
    "table_exists",
]


def _column_defs(columns: Mapping[str, str]) -> str:
    return ", ".join(f"{quote(name)} {sql_type}" for name, sql_type in columns.items())


def table_exists(database: Any, table: str) -> bool:
    """Return whether ``table`` exists (case-insensitive, as SQLite names are).

    Args:
        database: An open peewee database.
        table: The table name.
    """
    cursor = database.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", (table,)
    )
    return cursor.fetchone() is not None


def table_columns(database: Any, table: str) -> List[str]:
    """Return the column names of ``table`` in order; empty when the table does not exist.

    Args:
        database: An open peewee database.
        table: The table name.
    """
    cursor = database.execute_sql(f"PRAGMA table_info({quote(table)})")
    return [str(row[1]) for row in cursor.fetchall()]


def ensure_shared_tables(database: Any) -> None:
    """Create ``gen_cfg`` and ``exec_cfg`` if they do not exist.

    Args:
        database: An open peewee database, inside the writing transaction.
    """
    for table, columns in (("gen_cfg", GEN_CFG_COLUMNS), ("exec_cfg", EXEC_CFG_COLUMNS)):
        database.execute_sql(
            f"CREATE TABLE IF NOT EXISTS {quote(table)} "
            f"(id INTEGER PRIMARY KEY AUTOINCREMENT, {_column_defs(dict(columns))})"
        )


def ensure_task_table(database: Any, task_name: str, columns: Mapping[str, str]) -> None:
    """Create the Task table, or add the columns it lacks; existing rows keep NULL in new ones.

    Must run inside the writing transaction: another process may have added some of the columns
    since this one last looked, so the schema is read here, under the write lock.

    Args:
        database: An open peewee database, inside the writing transaction.
        task_name: The Task name (checked) which is also the table name.
        columns: ``{name: SQL type}`` of every column after the leading ones, in order.

    Raises:
        DatabaseError: A parameter column has a reserved name (``id``, ``valid_flag``…).
    """
    table = quote(check_task_name(task_name))
    existing = {name.lower() for name in table_columns(database, task_name)}
    if not existing:
        all_columns = dict(TASK_LEADING_COLUMNS)
        all_columns.update(columns)
        database.execute_sql(f"CREATE TABLE IF NOT EXISTS {table} ({_column_defs(all_columns)})")
        return
    for name, sql_type in columns.items():
        if name.lower() not in existing:
            database.execute_sql(f"ALTER TABLE {table} ADD COLUMN {quote(name)} {sql_type}")
            existing.add(name.lower())


def insert_row(database: Any, table: str, values: Mapping[str, Any]) -> int:
    """Insert one row and return its id.

    Args:
        database: An open peewee database.
        table: A checked table name.
        values: ``{column: value}``; values are bound as parameters, never interpolated.
    """
    names = ", ".join(quote(name) for name in values)
    marks = ", ".join("?" for _ in values)
    cursor = database.execute_sql(f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})", tuple(values.values()))
    row_id = cursor.lastrowid
    if row_id is None:
        raise DatabaseError(f"insert into {table} returned no row id")
    return int(row_id)


def insert_unique(database: Any, table: str, values: Mapping[str, Any]) -> int:
    """Return the id of the row equal to ``values`` (NULLs equal too), inserting it if new.

    Args:
        database: An open peewee database, inside the writing transaction (so two writers cannot
            both insert the same row).
        table: ``gen_cfg`` or ``exec_cfg``.
        values: ``{column: value}`` for every column but ``id``.
    """
    match = " AND ".join(f"{quote(name)} IS ?" for name in values)
    cursor = database.execute_sql(
        f"SELECT id FROM {quote(table)} WHERE {match} ORDER BY id DESC LIMIT 1",
        tuple(values.values()),
    )
    row = cursor.fetchone()
    if row is not None:
        return int(row[0])
    return insert_row(database, table, values)


def check_parameter_columns(names: Iterable[str]) -> None:
    """Raise if flattened parameter names cannot all be columns of one Task table.

    SQLite column names are case-insensitive, so ``a`` and ``A`` are the same column.

    Args:
        names: The flattened parameter names.

    Raises:
        DatabaseError: A name is reserved (``id``, ``valid_flag``, ``result.*``…) or two names
            differ only in case.
    """
    seen: Dict[str, str] = {}
    for name in names:
        lowered = name.lower()
        if lowered in RESERVED_COLUMNS:
            raise DatabaseError(f"parameter {name!r} clashes with a reserved column")
        if lowered in seen:
            raise DatabaseError(f"parameters {seen[lowered]!r} and {name!r} differ only in case")
        seen[lowered] = name
