"""Flattening of nested Task parameters into database columns (upstream LUTE's seed scheme).

Owns the mapping from a nested, JSON-able mapping to ``{column name: SQL value}`` and the choice
of a column's SQL type from a value. Pure functions only: must not open a database or know about
tables, headers or results.

Keys join with ``.`` and list items are indexed with ``[i]``::

    {"a": {"b": [1, 2], "c": "x"}}  ->  {"a.b[0]": 1, "a.b[1]": 2, "a.c": "x"}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Dict, List, Optional, Tuple, Union

SqlValue = Optional[Union[int, float, str]]
"""A value SQLite stores without conversion: NULL, INTEGER, REAL or TEXT."""

__all__ = ["SqlValue", "column_type", "flatten", "flatten_items", "to_sql_value"]


def to_sql_value(value: Any) -> SqlValue:
    """Convert one leaf value to what the database stores.

    bool becomes 0/1 (upstream stored bools as integers); int, float, str and None pass through;
    anything else becomes JSON text, or ``str()`` when it is not JSON-serialisable.

    Args:
        value: A leaf value (not a mapping or a list, which `flatten` expands).

    Returns:
        The value to bind as an SQL parameter.
    """
    if value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return int(value)
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return str(value)


def column_type(value: SqlValue) -> str:
    """Return the SQL type of a column whose first value is ``value``.

    Args:
        value: A value already converted by `to_sql_value`.

    Returns:
        ``INTEGER``, ``REAL`` or ``TEXT``; ``BLOB`` (no type affinity, as upstream) for None, so a
        column first seen empty keeps later values as they are.
    """
    if value is None:
        return "BLOB"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "REAL"
    return "TEXT"


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def _flatten_into(out: List[Tuple[str, SqlValue]], key: str, value: Any) -> None:
    if isinstance(value, Mapping):
        if not value:
            out.append((key, "{}"))
            return
        for sub_key, sub_value in value.items():
            _flatten_into(out, f"{key}.{sub_key}" if key else str(sub_key), sub_value)
    elif _is_list(value):
        if not value:
            out.append((key, "[]"))
            return
        for index, item in enumerate(value):
            _flatten_into(out, f"{key}[{index}]", item)
    else:
        out.append((key, to_sql_value(value)))


def flatten_items(data: Mapping[str, Any]) -> List[Tuple[str, SqlValue]]:
    """Flatten a nested mapping into ``(column name, SQL value)`` pairs, duplicates kept, in key order.

    Two spellings can flatten to one name (``{"a.b": 1, "a": {"b": 2}}`` gives ``a.b`` twice):
    the pairs keep both, so a checker can refuse what `flatten` would silently merge.

    Args:
        data: The nested mapping (e.g. validated Task parameters dumped to JSON-able form).

    Returns:
        A new list of pairs; see `flatten` for the naming scheme.
    """
    out: List[Tuple[str, SqlValue]] = []
    for key, value in data.items():
        _flatten_into(out, str(key), value)
    return out


def flatten(data: Mapping[str, Any]) -> Dict[str, SqlValue]:
    """Flatten a nested mapping into ``{column name: SQL value}``, keeping key order.

    Mappings join keys with ``.``; lists and tuples index items as ``[i]`` (so a list of dicts
    gives ``a[0].k``); an empty mapping or list is stored as the JSON text ``"{}"``/``"[]"`` under
    its own key; leaves go through `to_sql_value`. Of two spellings of one name the last wins:
    writers check `flatten_items` first and refuse such parameters.

    Args:
        data: The nested mapping (e.g. validated Task parameters dumped to JSON-able form).

    Returns:
        A new flat dict. An empty ``data`` gives an empty dict.
    """
    return dict(flatten_items(data))
