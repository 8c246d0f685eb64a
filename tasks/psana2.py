"""psana2 (LCLS-II) Tasks: per-event detector reductions written as an HDF5 small-data file.

``SmallDataPsana2`` reads an XTC2 run with psana2, sums a detector's per-event array (all pixels,
and optionally an ROI) and writes one event-aligned dataset per quantity, sorted by timestamp.
Runs in the ``psana2`` image; psana, numpy, h5py and mpi4py are imported inside ``run()`` only, so
the host validates the parameters without them. Under MPI psana2 spreads events over its bigdata
ranks; rank 0 gathers every rank's rows and writes the file, so one process and N ranks write the
same datasets, and returns the per-event sums as figures (``tasks/_event_figures.py``). No
calibration DB is used (``skip_calib_load='all'``) and no network is needed.
The DataSource, the gathering and the file writing are shared with ``SubmitSMD``
(``tasks/_psana2_io.py``), whose producer writes the full smalldata_tools layout.
"""

from __future__ import annotations

import glob
import os
import time
from typing import Any, Dict, List, Literal, Optional, Tuple

from pydantic import NonNegativeInt, PositiveInt, ValidationInfo, field_validator, model_validator

from lute_kernel.parameters import TaskParameters, on_worker, param
from lute_kernel.task import Task


class SmallDataPsana2(Task):
    """Per-event detector sums (and an ROI sum) of an XTC2 run, written as an HDF5 small-data file."""

    image = "psana2"
    env = ("PS_*",)  # psana2's own tuning knobs (PS_EB_NODES, PS_SRV_NODES, PS_SMD_N_EVENTS, ...)
    mpi = True  # one process by default; with --ranks N (>= 3: reader, event builder, workers) psana2 runs in parallel

    class Parameters(TaskParameters):
        """Parameters of ``SmallDataPsana2``. Give either ``files`` or ``xtc_dir``."""

        files: List[str] = param([], "XTC2 files to read in order (one process; no small-data index needed).")
        xtc_dir: Optional[str] = param(
            None,
            "Folder with <experiment>-r<run:04d>-s*-c*.xtc2 and their smalldata/*.smd.xtc2 index "
            "(psana's smdwriter); experiment and run come from the header. Needed for MPI.",
        )
        detector: str = param("xppcspad", "Detector whose per-event array is reduced.")
        array: Literal["raw", "calib", "image"] = param(
            "raw", "Which array to reduce: raw ADU (needs no calibration constants), calib or image."
        )
        roi: Optional[List[Tuple[NonNegativeInt, NonNegativeInt]]] = param(
            None,
            "Half-open [start, stop) bounds on the array's last axes, e.g. [[0, 3], [2, 5]] for rows 0-2, "
            "cols 2-4 (every segment of a multi-segment array). Adds <detector>/roi_sum.",
        )
        max_events: Optional[PositiveInt] = param(None, "Stop after this many events (default: all).")
        batch_size: PositiveInt = param(1000, "Events per batch psana2 sends to each bigdata rank.")
        progress_every: PositiveInt = param(100, "Report progress every this many events (per rank).")
        logbook_lookup: bool = param(
            False,
            "Ask the LCLS logbook for the run's file list (xtc_dir). Off: files are found on disk "
            "(psana 4.3 raises when the logbook is unreachable).",
        )
        out_file: str = param(
            "",
            "HDF5 output (relative paths: under work_dir). Default: <work_dir>/smalldata/<exp>_r<run:04d>.h5.",
            is_result=True,
        )

        set_result = True

        @field_validator("roi")
        @classmethod
        def _roi_is_ordered(cls, roi: Optional[List[Tuple[int, int]]]) -> Optional[List[Tuple[int, int]]]:
            if roi is None:
                return None
            if not 1 <= len(roi) <= 3:
                raise ValueError(f"roi needs 1 to 3 [start, stop) pairs, got {len(roi)}")
            for axis, (start, stop) in enumerate(roi):
                if stop <= start:
                    raise ValueError(f"roi axis {axis}: stop {stop} must be greater than start {start}")
            return roi

        @model_validator(mode="after")
        def _input_and_output(self, info: ValidationInfo) -> SmallDataPsana2.Parameters:
            header = self.lute_config
            if bool(self.files) == bool(self.xtc_dir):
                raise ValueError("give exactly one of files or xtc_dir")
            has_run = str(header.run).isdigit()
            if self.xtc_dir and not (header.experiment and has_run):
                raise ValueError(
                    f"xtc_dir needs the experiment and run number in the config header "
                    f"(got experiment={header.experiment!r}, run={header.run!r})"
                )
            if not self.out_file:
                if header.experiment and has_run:
                    name = f"{header.experiment}_r{int(header.run):04d}.h5"
                else:  # files without a run in the header: name the output after the first file
                    name = os.path.splitext(os.path.basename(self.files[0]))[0] + ".h5"
                self.out_file = os.path.join("smalldata", name)
            self.out_file = os.path.join(header.work_dir, self.out_file)  # absolute paths stay as they are
            if not on_worker(info):  # the host checks the inputs before any container starts
                self._check_inputs_exist()
            return self

        def _check_inputs_exist(self) -> None:
            missing = [f for f in self.files if not os.path.isfile(f)]
            if missing:
                raise ValueError(f"XTC2 file(s) not found: {', '.join(missing)}")
            if self.xtc_dir:
                run = f"r{int(self.lute_config.run):04d}"
                if not glob.glob(os.path.join(self.xtc_dir, f"*-{run}-s*.xtc2")):
                    raise ValueError(f"no *-{run}-s*.xtc2 files in xtc_dir {self.xtc_dir!r}")
                if not glob.glob(os.path.join(self.xtc_dir, "smalldata", f"*-{run}-s*.smd.xtc2")):
                    raise ValueError(
                        f"no smalldata/*-{run}-s*.smd.xtc2 index in {self.xtc_dir!r}; write it with psana's smdwriter"
                    )

    def run(self) -> None:
        """Reduce every event, gather the rows to rank 0 and write the HDF5 file there."""
        import numpy as np

        from ._psana2_io import gather_rows, mpi_world, open_datasource, psana_version, write_h5

        params = self.params
        assert isinstance(params, SmallDataPsana2.Parameters)
        comm = mpi_world()
        rank, size = (comm.Get_rank(), comm.Get_size()) if comm is not None else (0, 1)
        if params.files and size > 1:
            raise ValueError("files are read by one process; under MPI give xtc_dir (with its smalldata/ index)")
        start = time.monotonic()
        source = open_datasource(
            files=params.files,
            experiment=str(params.lute_config.experiment),
            run=int(params.lute_config.run) if params.xtc_dir else 0,
            xtc_dir=params.xtc_dir,
            batch_size=params.batch_size,
            max_events=params.max_events,
            logbook_lookup=params.logbook_lookup,
        )
        times: List[int] = []
        rows: Dict[str, List[Any]] = {f"{params.detector}/sum": []}
        if params.roi:
            rows[f"{params.detector}/roi_sum"] = []
        info: Dict[str, Any] = {}
        for run in source.runs():
            if params.detector not in run.detnames:
                raise ValueError(f"no detector {params.detector!r} in run {run.runnum}; found {sorted(run.detnames)}")
            det = run.Detector(params.detector)
            read = getattr(det.raw, params.array)
            info = {"experiment": run.expt, "run": run.runnum}
            roi: Optional[Tuple[slice, ...]] = None
            for evt in run.events():
                data = read(evt)
                if data is None:  # the detector is missing from this event: keep the rows aligned
                    total, in_roi = float("nan"), float("nan")
                else:
                    if roi is None and params.roi:
                        roi = _roi_slices(params.roi, data.shape)
                    total = float(np.sum(data, dtype=np.float64))
                    in_roi = float(np.sum(data[roi], dtype=np.float64)) if roi else float("nan")
                times.append(evt.timestamp)
                rows[f"{params.detector}/sum"].append(total)
                if params.roi:
                    rows[f"{params.detector}/roi_sum"].append(in_roi)
                if len(times) % params.progress_every == 0:
                    self.progress(len(times), params.max_events, f"rank {rank}: {len(times)} events")
        infos = comm.gather(info, root=0) if comm is not None else [info]
        gathered = gather_rows(comm, rows, times)
        summary: Optional[Dict[str, Any]] = None
        if gathered is not None:
            timestamp, columns = gathered
            info = next((part for part in infos if part), info)
            datasets = {"timestamp": timestamp, **columns}
            attrs = {
                **info,
                "detector": params.detector,
                "array": params.array,
                "roi": np.asarray(params.roi or [], dtype=np.int64),
                "psana_version": psana_version(),
            }  # no rank count here: one process and N ranks must write the same file
            write_h5(params.out_file, datasets, attrs)
            seconds = time.monotonic() - start
            summary = {
                "events": int(timestamp.size),
                "seconds": round(seconds, 3),
                "rate_hz": round(timestamp.size / seconds, 1) if seconds > 0 else None,
                "ranks": size,
            }
            self.log.info("%d events in %.2f s -> %s", timestamp.size, seconds, params.out_file)
            from ._event_figures import per_event_figures

            title = f"{info.get('experiment', '')} run {info.get('run', '')} {params.detector}"
            self.add_figures(f"smalldata/{params.detector}", per_event_figures(columns, title.strip()))
        if comm is not None:
            summary = comm.bcast(summary, root=0)
        self.result.summary = summary
        self.result.payload = params.out_file


def _roi_slices(roi: List[Tuple[int, int]], shape: Tuple[int, ...]) -> Tuple[slice, ...]:
    """Return the index for ``data[...]``: the ROI on the last axes, every leading axis whole."""
    if len(roi) > len(shape):
        raise ValueError(f"roi has {len(roi)} axes but the array has shape {shape}")
    trailing = shape[len(shape) - len(roi) :]
    for axis, ((_, stop), extent) in enumerate(zip(roi, trailing)):
        if stop > extent:
            raise ValueError(f"roi axis {axis}: stop {stop} is beyond the array's {extent} (shape {shape})")
    leading = (slice(None),) * (len(shape) - len(roi))
    return (*leading, *(slice(start, stop) for start, stop in roi))
