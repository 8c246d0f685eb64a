"""The tables of ``lute.db`` (upstream LUTE's v1 "seed" schema plus provenance columns): made and grown.

Owns the creation of ``gen_cfg``, ``exec_cfg`` and the per-Task tables (peewee's schema manager)
and their evolution (``playhouse.migrate`` adds the columns of parameters not seen before); their
columns and reserved names are data in ``lute_kernel.db.layout`` (import them from there). Must not open
connections or begin transactions: callers pass an open peewee database, inside the transaction
that also writes the row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import List, Optional

import peewee

from lute_kernel.db.connection import check_task_name
from lute_kernel.db.layout import TASK_LEADING_COLUMNS
from lute_kernel.db.models import ExecCfg, GenCfg, RawColumn, TaskTable, reflect_task_table, task_table

__all__ = [
    "ensure_shared_tables",
    "ensure_task_table",
    "table_columns",
    "table_exists",
]


def table_exists(database: peewee.SqliteDatabase, table: str) -> bool:
    """Return whether ``table`` exists (case-insensitive, as SQLite names are).

    Args:
        database: An open peewee database.
        table: The table name.
    """
    return table.lower() in {name.lower() for name in database.get_tables()}


def table_columns(database: peewee.SqliteDatabase, table: str) -> List[str]:
    """Return the column names of ``table`` in order; empty when the table does not exist.

    Args:
        database: An open peewee database.
        table: The table name.
    """
    return [str(column.name) for column in database.get_columns(table)]


def ensure_shared_tables(database: peewee.SqliteDatabase) -> None:
    """Create ``gen_cfg`` and ``exec_cfg`` if they do not exist.

    Args:
        database: An open peewee database, inside the writing transaction.
    """
    for model in (GenCfg, ExecCfg):
        peewee.SchemaManager(model, database=database).create_table(safe=True)


def ensure_task_table(
    database: peewee.SqliteDatabase,
    task_name: str,
    columns: Mapping[str, str],
    *,
    reflected: Optional[type[TaskTable]] = None,
) -> type[TaskTable]:
    """Create the Task table, or add the columns it lacks; return its model as it is now.

    Existing rows keep NULL in new columns. Must run inside the writing transaction: another
    process may have added some of the columns since this one last looked, so the schema is
    read here, under the write lock. Columns are matched case-insensitively, as SQLite does.

    Args:
        database: An open peewee database, inside the writing transaction.
        task_name: The Task name (checked) which is also the table name.
        columns: ``{name: SQL type}`` of every column after the leading ones, in order.
        reflected: The table's model as `reflect_task_table` gave it in this same transaction
            (saves reading and building it again); None: read here.

    Returns:
        The table's model, every column included.
    """
    check_task_name(task_name)
    existing = reflected if reflected is not None else reflect_task_table(database, task_name)
    if existing is None:
        model = task_table(database, task_name, [*TASK_LEADING_COLUMNS, *columns.items()])
        peewee.SchemaManager(model, database=database).create_table(safe=True)
        return model
    have = {name.lower() for name in existing.columns}
    missing = [(name, sql_type) for name, sql_type in columns.items() if name.lower() not in have]
    if not missing:
        return existing
    # Only a new parameter needs it; it imports playhouse's postgres and cockroach modules (~5 ms a run).
    from playhouse.migrate import SqliteMigrator, migrate

    migrator = SqliteMigrator(database)
    migrate(*(migrator.add_column(task_name, name, RawColumn(sql_type)) for name, sql_type in missing))
    updated = reflect_task_table(database, task_name)
    assert updated is not None  # it existed a moment ago, under the same write lock
    return updated
