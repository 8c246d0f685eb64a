"""The column layout of ``lute.db`` as data: upstream LUTE's v1 "seed" schema plus provenance columns.

Owns the column names and types of ``gen_cfg``, ``exec_cfg`` and the per-Task tables and which names
are reserved. Pure data and one pure function, without peewee, so the checks before a launch can
use them without importing the database layer; ``lute_kernel.db.schema`` creates and evolves the
tables from them.
"""

from __future__ import annotations

from typing import Tuple

GEN_CFG_COLUMNS: Tuple[Tuple[str, str], ...] = (
    ("title", "TEXT"),
    ("experiment", "TEXT"),
    ("run", "INTEGER"),
    ("date", "TEXT"),
    ("lute_version", "TEXT"),
    ("task_timeout", "INTEGER"),
)
"""The header keys kept in ``gen_cfg`` (the `GenCfg` model); other header keys (``work_dir``…) are not stored."""

EXEC_CFG_COLUMNS: Tuple[Tuple[str, str], ...] = (
    ("env", "TEXT"),
    ("poll_interval", "REAL"),
    ("communicator_desc", "TEXT"),
)
"""The columns of ``exec_cfg`` (the `ExecCfg` model)."""

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
    ("prov.pid", "INTEGER"),
    ("prov.pid_start", "INTEGER"),
)
"""Columns every Task table has after its parameters (result, validity, provenance)."""

RESERVED_COLUMNS = frozenset(name.lower() for name, _ in TASK_LEADING_COLUMNS + TASK_TRAILING_COLUMNS)
RESERVED_PREFIXES = ("result.", "prov.")
"""Column name prefixes only the kernel writes (compared case-insensitively, as SQLite does)."""

__all__ = [
    "EXEC_CFG_COLUMNS",
    "GEN_CFG_COLUMNS",
    "RESERVED_COLUMNS",
    "RESERVED_PREFIXES",
    "TASK_LEADING_COLUMNS",
    "TASK_TRAILING_COLUMNS",
    "is_reserved",
]


def is_reserved(name: str) -> bool:
    """Return whether a parameter may not use ``name`` as its column (``id``, ``valid_flag``, ``prov.*``…)."""
    lowered = name.lower()
    return lowered in RESERVED_COLUMNS or lowered.startswith(RESERVED_PREFIXES)
