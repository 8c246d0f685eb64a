"""lute-kernel's psana2 small-data producer: one run in, one smalldata_tools-layout HDF5 file out.

Owns the event loop of ``SubmitSMD``: it loads the rendered producer configuration (the
``prod_config`` module of smalldata_tools: ``detnames``, ``epicsPV``, ``getROIs(run)``,
``getAzIntPyFAIParams(run)``), builds the extractors of ``_smd_extract`` for the run, reduces every
event on psana2's bigdata ranks, gathers the rows and run sums on rank 0 and writes
``<directory>/<exp>_Run<run:04d>.h5`` there (``timestamp``, per-event groups, ``Sums/``,
``UserDataCfg/``). Runs in the psana2 image only. It must not know the kernel: a progress callback
and the validated parameters are all it gets.
"""

from __future__ import annotations

import logging
import runpy
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ._psana2_io import gather_rows, mpi_world, open_datasource, psana_version, write_h5
from ._smd_extract import (
    AreaDetector,
    RunData,
    epics_extractor,
    light_extractor,
    scalar_extractors,
    scan_extractor,
)
from ._smd_params import SubmitSMDParameters

Progress = Callable[[int, str], None]
log = logging.getLogger("lute.task.SubmitSMD")


class EventRows:
    """Per-event values by dataset name, kept aligned: a name first seen late is back-filled with None."""

    def __init__(self) -> None:
        self.times: List[int] = []
        self.columns: Dict[str, List[Any]] = {}

    def add(self, timestamp: int, row: Dict[str, Any]) -> None:
        """Append one event."""
        for name in row.keys() - self.columns.keys():
            self.columns[name] = [None] * len(self.times)
        for name, values in self.columns.items():
            values.append(row.get(name))
        self.times.append(timestamp)


def load_producer_config(path: str) -> Dict[str, Any]:
    """Load the rendered configuration module (literals and get*(run) functions only: we wrote it)."""
    return runpy.run_path(path)


def produce(params: SubmitSMDParameters, progress: Progress) -> Optional[Dict[str, Any]]:
    """Reduce the run; return the summary (every rank returns rank 0's)."""
    comm = mpi_world()
    rank, size = (comm.Get_rank(), comm.Get_size()) if comm is not None else (0, 1)
    start = time.monotonic()
    config = load_producer_config(params.lute_template_cfg.output_path)
    source = open_datasource(
        experiment=params.experiment,
        run=params.run_number,
        xtc_dir=params.xtc_dir,
        batch_size=params.gather_interval,
        max_events=params.nevents if params.nevents < int(1e9) else None,
    )
    rows = EventRows()
    data = RunData()
    info: Dict[str, Any] = {}
    for run in source.runs():
        info = {"experiment": run.expt, "run": run.runnum}
        extractors = make_extractors(run, config, params.experiment[:3], data)
        for evt in run.events():
            row: Dict[str, Any] = {}
            for extract in extractors:
                row.update(extract(evt))
            rows.add(evt.timestamp, row)
            if len(rows.times) % 100 == 0:
                progress(len(rows.times), f"rank {rank}: {len(rows.times)} events")
    gathered = gather_rows(comm, rows.columns, rows.times)
    runs = comm.gather((info, data.sums, data.maxima, data.settings), root=0) if comm is not None else None
    summary: Optional[Dict[str, Any]] = None
    if gathered is not None:
        parts = runs if runs is not None else [(info, data.sums, data.maxima, data.settings)]
        info = next((part[0] for part in parts if part[0]), info)
        timestamp, columns = gathered
        datasets: Dict[str, Any] = {"timestamp": timestamp, **columns, **combine_run_data(parts)}
        attrs = {**info, "producer": "lute-kernel psana2 producer", "psana_version": psana_version()}
        write_h5(params.out_file, datasets, attrs)
        seconds = time.monotonic() - start
        missing = sorted({name for part in parts for name in part[3].get("missing", [])})
        summary = {
            **({"missing_detectors": missing} if missing else {}),
            "events": int(timestamp.size),
            "datasets": len(datasets),
            "seconds": round(seconds, 3),
            "rate_hz": round(timestamp.size / seconds, 1) if seconds > 0 else None,
            "ranks": size,
        }
    return comm.bcast(summary, root=0) if comm is not None else summary


def make_extractors(
    run: Any, config: Dict[str, Any], hutch: str, data: RunData
) -> List[Callable[[Any], Dict[str, Any]]]:
    """Return the run's extractors in the order their datasets are read."""
    detnames: List[str] = list(config.get("detnames", []))
    rois = config["getROIs"](run.runnum) if "getROIs" in config else {}
    azav = config["getAzIntPyFAIParams"](run.runnum) if "getAzIntPyFAIParams" in config else {}
    for name in sorted((set(rois) | set(azav)) - set(detnames)):
        detnames.append(name)  # an ROI or integration names its detector: process it
    absent = [name for name in detnames if name not in run.detnames]
    if absent:  # as smalldata_tools: one configuration serves runs with different detectors
        log.warning("run %s has no %s (it has %s): skipped", run.runnum, ", ".join(absent), sorted(run.detnames))
        data.settings["missing"] = absent
    detnames = [name for name in detnames if name in run.detnames]
    found = [
        light_extractor(run, hutch),
        scan_extractor(run),
        epics_extractor(run, config.get("epicsPV", [])),
        *scalar_extractors(run, detnames),
        *(AreaDetector(run, name, rois.get(name, []), azav.get(name), data) for name in detnames),
    ]
    return [extract for extract in found if extract is not None]


def combine_run_data(parts: List[Any]) -> Dict[str, Any]:
    """Sum the ranks' run sums, take the maximum of their maxima, keep the first settings seen."""
    combined: Dict[str, Any] = {}
    for _, sums, maxima, settings in parts:
        for key, value in sums.items():
            combined[key] = combined[key] + value if key in combined else value
        for key, value in maxima.items():
            combined[key] = np.maximum(combined[key], value) if key in combined else value
        for key, value in settings.items():
            if key != "missing":  # not a dataset: reported in the summary
                combined.setdefault(key, value)
    return combined
