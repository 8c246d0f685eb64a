"""psana2 plumbing shared by the small-data Tasks: MPI world, DataSource, gathering rows, the HDF5 file.

Owns how ``SmallDataPsana2`` and ``SubmitSMD`` open a run offline (no calibration DB, no logbook),
find their MPI world, gather per-event rows from psana2's bigdata ranks to rank 0 in time order,
and write an HDF5 file atomically. Imported inside the psana2 image only (``run()``); psana, numpy,
h5py and mpi4py are imported inside the functions, so importing this module costs nothing. It must
not know any Task's parameters beyond the few values passed in.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Optional, Tuple


def mpi_world() -> Any:
    """Return MPI.COMM_WORLD when psana runs in MPI mode with more than one rank, else None."""
    if os.environ.get("PS_PARALLEL", "mpi") != "mpi":  # psana's own switch: then it never imports mpi4py
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


def open_datasource(
    *,
    files: Optional[List[str]] = None,
    experiment: str = "",
    run: int = 0,
    xtc_dir: Optional[str] = None,
    batch_size: int = 1000,
    max_events: Optional[int] = None,
    logbook_lookup: bool = False,
) -> Any:
    """Open the DataSource without a calibration DB (and, unless asked, without the logbook)."""
    import psana

    common: Dict[str, Any] = {"skip_calib_load": "all", "batch_size": batch_size}
    if max_events:
        common["max_events"] = max_events
    if files:
        return psana.DataSource(files=list(files), **common)
    if not logbook_lookup:
        from psana.psexp.ds_base import DataSourceBase

        # psana 4.3 calls requests.get(logbook) outside its try block: offline it raises instead of
        # falling back to the files on disk. "The logbook knows nothing" is that fallback.
        DataSourceBase._get_file_info_from_db = lambda self, runnum: {}
    if xtc_dir:
        common["dir"] = xtc_dir
    return psana.DataSource(exp=experiment, run=run, **common)


def psana_version() -> str:
    """Return the installed psana's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("psana")
    except PackageNotFoundError:
        import psana

        return str(getattr(psana, "__version__", "unknown"))


def gather_rows(comm: Any, rows: Dict[str, List[Any]], times: List[int]) -> Optional[Tuple[Any, Dict[str, Any]]]:
    """Gather every rank's per-event rows on rank 0; return (timestamps, columns) in time order there.

    ``rows`` maps a dataset name to one value per event of ``times`` (None where the event lacked
    it: filled with NaN of the column's shape, so every column stays event-aligned). Other ranks
    get None.
    """
    import numpy as np

    parts = comm.gather((times, rows), root=0) if comm is not None else [(times, rows)]
    if parts is None:
        return None
    all_times = [t for part_times, _ in parts for t in part_times]
    names = sorted({name for _, part_rows in parts for name in part_rows})
    columns: Dict[str, Any] = {}
    for name in names:
        values: List[Any] = []
        for part_times, part_rows in parts:
            values.extend(part_rows.get(name, [None] * len(part_times)))
        columns[name] = stack_with_gaps(values)
    stamps = np.asarray(all_times, dtype=np.uint64)
    order = np.argsort(stamps, kind="stable")
    return stamps[order], {name: column[order] for name, column in columns.items()}


def stack_with_gaps(values: Iterable[Any]) -> Any:
    """Stack per-event values; a missing one (None) becomes NaN (or -1 for integer data) of the same shape."""
    import numpy as np

    values = list(values)
    example = next((np.asarray(v) for v in values if v is not None), None)
    if example is None:
        return np.full(len(values), np.nan)
    if any(v is None for v in values):
        dtype = example.dtype if example.dtype.kind == "f" else (np.int64 if example.dtype.kind in "iub" else float)
        gap = np.full(example.shape, -1 if np.dtype(dtype).kind == "i" else np.nan, dtype=dtype)
        values = [gap if v is None else v for v in values]
    return np.stack([np.asarray(v) for v in values])


def write_h5(
    path: str, datasets: Dict[str, Any], attrs: Dict[str, Any], group_attrs: Optional[Dict[str, Any]] = None
) -> None:
    """Write the file next to its final name, then rename: readers never see half a file.

    Dataset names with slashes make groups (``epix10k2M/ROI_0_sum``), as smalldata_tools' files have.
    """
    import h5py

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    partial = f"{path}.part{os.getpid()}"
    try:
        with h5py.File(partial, "w") as out:
            for name, values in datasets.items():
                out.create_dataset(name, data=values)
            out.attrs.update(attrs)
            for group, values in (group_attrs or {}).items():
                out.require_group(group).attrs.update(values)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
