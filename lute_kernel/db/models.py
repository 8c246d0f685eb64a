"""The peewee models of ``lute.db``: ``gen_cfg`` and ``exec_cfg``, and per-Task tables built at run time.

Owns how the seed schema is expressed as peewee models: column names and SQL types exactly as
upstream LUTE's writer creates them (``"id" INTEGER PRIMARY KEY AUTOINCREMENT``, ``TEXT``,
``INTEGER``, ``REAL``, ``BLOB``, ``DATETIME DEFAULT CURRENT_TIMESTAMP``; every other column
nullable, no indexes), and the dynamic model of one Task table, built either from the columns a
writer wants or from the columns the database has (peewee's introspection).

Values are bound and read as they are: `RawColumn` converts nothing, so SQLite's type affinity
stores them the way upstream's ``sqlite3`` writer did (a text value in an INTEGER column stays
text, as it always has). The module-level models are not bound to a database: queries name the
database when they execute (``query.execute(database)``), since flows record from many threads of
one process and a model bound per call would be shared state. Must not open connections.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Optional, Tuple, cast

import peewee

if TYPE_CHECKING:
    _FieldBase = peewee.Field[Any]  # the stubs make Field generic; peewee's class is not subscriptable
else:
    _FieldBase = peewee.Field

__all__ = [
    "ExecCfg",
    "GenCfg",
    "RawColumn",
    "RowId",
    "TaskTable",
    "column_field",
    "reflect_task_table",
    "task_table",
    "tuples",
]


class RawColumn(_FieldBase):
    """A nullable column of a given SQL type whose values pass through unconverted.

    Args:
        sql_type: The declared type (``TEXT``, ``INTEGER``, ``REAL``, ``BLOB``, ``DATETIME`` or an
            upstream table's own), written verbatim into the DDL.
        **kwargs: Passed on to ``peewee.Field`` (``column_name``, ``constraints``).
    """

    def __init__(self, sql_type: str, **kwargs: Any) -> None:
        # An instance attribute: peewee reads ``self.field_type`` when it writes the DDL.
        self.field_type = sql_type  # type: ignore[misc]
        super().__init__(null=True, **kwargs)

    def clone(self) -> RawColumn:
        """Return a copy (playhouse.migrate clones the field it adds)."""
        return RawColumn(self.field_type, column_name=self.column_name, constraints=self.constraints)


class RowId(peewee.AutoField):
    """``"id" INTEGER PRIMARY KEY AUTOINCREMENT`` without ``NOT NULL``, as upstream declares it."""

    field_type = "INTEGER"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(null=True, constraints=[peewee.SQL("AUTOINCREMENT")], **kwargs)


class _Unbound(peewee.Model):
    class Meta:
        database = None
        legacy_table_names = False


class GenCfg(_Unbound):
    """``gen_cfg``: the header keys upstream keeps, one row per distinct header."""

    id = RowId()
    title = RawColumn("TEXT")
    experiment = RawColumn("TEXT")
    run = RawColumn("INTEGER")
    date = RawColumn("TEXT")
    lute_version = RawColumn("TEXT")
    task_timeout = RawColumn("INTEGER")

    class Meta:
        """The table's name in every lute.db."""

        table_name = "gen_cfg"


class ExecCfg(_Unbound):
    """``exec_cfg``: the recorded environment and the executor's settings, one row per distinct set."""

    id = RowId()
    env = RawColumn("TEXT")
    poll_interval = RawColumn("REAL")
    communicator_desc = RawColumn("TEXT")

    class Meta:
        """The table's name in every lute.db."""

        table_name = "exec_cfg"


class TaskTable(peewee.Model):
    """Base of the per-Task models `task_table` builds; ``columns`` maps column names to fields.

    Column names hold dots and brackets (``a.b[0]``, ``result.payload``), so fields get generated
    attribute names and are looked up by column name (`column`).
    """

    columns: ClassVar[Dict[str, peewee.Field[Any]]] = {}

    class Meta:
        """Not bound here: `task_table` binds each generated model to its own connection."""

        legacy_table_names = False

    @classmethod
    def column(cls, name: str) -> Optional[peewee.Field[Any]]:
        """Return the field of column ``name`` (case-insensitive, as SQLite names are), or None."""
        lowered = name.lower()
        return next((field for column, field in cls.columns.items() if column.lower() == lowered), None)

    @classmethod
    def row_id(cls) -> peewee.Field[Any]:
        """Return the ``id`` field (the primary key)."""
        field = cls.column("id")
        if field is None:
            raise peewee.ProgrammingError(f"table {cls._meta.table_name!r} has no id column")
        return field


def tuples(query: Any) -> List[Tuple[Any, ...]]:
    """Run a select and return its rows as tuples (the query names its database)."""
    return [tuple(row) for row in query.tuples()]


def column_field(name: str, sql_type: str) -> peewee.Field[Any]:
    """Return the field of one Task-table column.

    Args:
        name: The column name.
        sql_type: ``INTEGER PRIMARY KEY AUTOINCREMENT`` for ``id``, ``DATETIME DEFAULT
            CURRENT_TIMESTAMP`` for ``timestamp``, else a plain type.
    """
    if sql_type.upper().startswith("INTEGER PRIMARY KEY"):
        return RowId(column_name=name)
    base, _, default = sql_type.partition(" DEFAULT ")
    constraints = [peewee.SQL(f"DEFAULT {default}")] if default else None
    return RawColumn(base, column_name=name, constraints=constraints)


def task_table(database: peewee.SqliteDatabase, table_name: str, columns: Iterable[Tuple[str, str]]) -> type[TaskTable]:
    """Build the model of one Task table, bound to ``database`` (one model per connection).

    Args:
        database: The open database the model's queries run on.
        table_name: The (checked) Task name.
        columns: ``(name, SQL type)`` in table order; the first must be ``id``.

    Returns:
        A `TaskTable` subclass whose ``columns`` maps each column name to its field.
    """
    fields: Dict[str, peewee.Field[Any]] = {}
    attrs: Dict[str, Any] = {}
    for index, (name, sql_type) in enumerate(columns):
        field = column_field(name, sql_type)
        fields[name] = field
        attrs["id" if isinstance(field, RowId) else f"c{index}"] = field
    meta: Dict[str, Any] = {"database": database, "table_name": table_name}
    if "id" not in attrs:
        meta["primary_key"] = False  # a foreign table without upstream's id: peewee must not invent one
    attrs.update({"Meta": type("Meta", (), meta), "columns": fields})
    return cast("type[TaskTable]", type(f"Task_{table_name}", (TaskTable,), attrs))


def reflect_task_table(database: peewee.SqliteDatabase, table_name: str) -> type[TaskTable] | None:
    """Build the model of a Task table as the database has it now, or None if there is no such table.

    Uses peewee's introspection (``get_columns``), so columns another writer (another process,
    or upstream LUTE itself) added are included with their declared types.

    Args:
        database: An open database.
        table_name: The (checked) Task name.
    """
    described: Sequence[Any] = database.get_columns(table_name)
    if not described:
        return None
    columns = []
    for column in described:
        sql_type = str(column.data_type or "")
        if column.primary_key and sql_type.upper() == "INTEGER":
            sql_type = "INTEGER PRIMARY KEY AUTOINCREMENT"
        columns.append((str(column.name), sql_type))
    return task_table(database, table_name, columns)
