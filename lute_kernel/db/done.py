"""Finding the run that already did what is asked: skip-if-done for ``run --skip-done`` and flows.

Owns the one question "is there a valid COMPLETED row of this Task, for this experiment and run,
with the same parameters, image digest and kernel version?". The comparison is SQL's ``IS`` on each
column, so SQLite applies the column's affinity to the value exactly as it did when the row was
written (``"12"`` in an INTEGER column is 12 both times); a parameter column the current parameters
do not fill must be NULL in the row. Read-only (``mode=ro``); a missing database, table or column is
"not done". Must not decide what to do with the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Dict, List, Optional

from lute_kernel.db.connection import PathLike, check_task_name, db_path, read_connection
from lute_kernel.db.layout import RESERVED_COLUMNS, RESERVED_PREFIXES
from lute_kernel.db.models import GenCfg, reflect_task_table, tuples
from lute_kernel.db.queries import RunNumber
from lute_kernel.db.recordable import Unrecordable, recordable_row
from lute_kernel.db.schema import table_exists
from lute_kernel.errors import InputError

__all__ = ["find_done_row"]


def _is_parameter(column: str) -> bool:
    lowered = column.lower()
    return lowered not in RESERVED_COLUMNS and not lowered.startswith(RESERVED_PREFIXES)


def find_done_row(
    work_dir: PathLike,
    task_name: str,
    parameters: Mapping[str, Any],
    *,
    experiment: str,
    run: RunNumber,
    image_sha256: Optional[str],
    kernel_version: str,
) -> Optional[Dict[str, Any]]:
    """Return the newest valid COMPLETED row that did exactly this run, or None.

    Args:
        work_dir: The work directory holding ``lute.db``.
        task_name: The Task (table) name.
        parameters: The validated parameters (``TaskParameters.task_values()``), nested.
        experiment: The header's experiment.
        run: The header's run (compared as ``gen_cfg.run`` stores it).
        image_sha256: The SIF's sha256 the run would use (None for the local runtime).
        kernel_version: This kernel's version.

    Returns:
        The row (``{column: value}``), or None when nothing matches, or there is no database, table,
        or column to compare.
    """
    try:
        check_task_name(task_name)
        flat = recordable_row(parameters)
    except (InputError, Unrecordable):
        return None
    if not db_path(work_dir).is_file():
        return None
    with read_connection(work_dir) as database:
        model = reflect_task_table(database, task_name)
        if model is None or not table_exists(database, "gen_cfg"):
            return None
        wanted = {name.lower(): value for name, value in flat.items()}
        columns = {name.lower(): field for name, field in model.columns.items()}
        if any(name not in columns for name in wanted):
            return None  # a parameter no row ever had
        fixed = {
            "result.task_status": "COMPLETED",
            "valid_flag": 1,
            "prov.image_sha256": image_sha256,
            "prov.kernel_version": kernel_version,
        }
        if any(name not in columns for name in (*fixed, "gen_cfg_id")):
            return None
        conditions: List[Any] = [columns[name] >> value for name, value in fixed.items()]  # ``>>`` is SQL's IS
        for name, field in columns.items():
            if _is_parameter(name):
                conditions.append(field >> wanted.get(name))
        query = (
            model.select(*model.columns.values())
            .join(GenCfg, on=(GenCfg.id == columns["gen_cfg_id"]))
            .where(GenCfg.experiment == experiment, GenCfg.run == run, *conditions)
            .order_by(model.row_id().desc())
            .limit(1)
        )
        found = tuples(query)
    return dict(zip(model.columns, found[0])) if found else None
