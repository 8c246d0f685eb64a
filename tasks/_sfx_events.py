"""This rank's events of an XTC2 run, for peak finding: detector array, time stamp, energy, distance.

Owns opening the run with psana2 the way the number of MPI ranks allows, and reading what the CXI
file records per event. One rank: psana's serial DataSource. Two ranks: psana2's MPI mode needs at
least three (SMD0, event builder, bigdata), so each rank reads the run serially and keeps every
other event. Three or more: psana2's own MPI DataSource, which hands events to its bigdata ranks
(SMD0 and event-builder ranks see none). Imported inside the psana2 image only; no calibration DB
(``skip_calib_load='all'``) and, unless asked, no logbook. Must not find peaks or write files.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Tuple

PHOTON_WAVELENGTH_PV = "SIOC:SYS0:ML00:AO192"  # the LCLS wavelength PV (nm), upstream's fallback
HC_EV_M = 1.23984197386209e-06  # h*c in eV*m: E[eV] = hc / lambda[m]


@dataclass
class Event:
    """What one event gives the peak finder and the CXI file."""

    data: Any
    seconds: int
    nanoseconds: int
    fiducial: int
    photon_energy: float
    clen: float
    mask: Any = None  # psana's pixel mask, on the first event only (psana_mask)


def open_run(params: Any, size: int) -> Tuple[Any, Any]:
    """Open the header's run; return the DataSource and its first run (keep both: the source owns the files)."""
    import psana
    from psana.psexp.ds_base import DataSourceBase

    header = params.lute_config
    if not params.logbook_lookup:
        # psana 4.3 calls the logbook outside its try block: offline it raises instead of falling back
        # to the files on disk. "The logbook knows nothing" is that fallback.
        DataSourceBase._get_file_info_from_db = lambda self, runnum: {}
    kwargs: Dict[str, Any] = {"exp": str(header.experiment), "run": int(header.run), "skip_calib_load": "all"}
    if params.xtc_dir:
        kwargs["dir"] = params.xtc_dir
    if params.n_events:
        kwargs["max_events"] = params.n_events
    if size == 2:
        import psana.smalldata
        from psana.psexp.serial_ds import SerialDataSource

        # Not psana.DataSource: it would start MPI mode, which needs 3 ranks. Each rank reads on its
        # own; psana's small-data writer (unused here) must then not partition COMM_WORLD either.
        psana.smalldata.MODE = "SERIAL"
        source = SerialDataSource(**kwargs)
    else:
        source = psana.DataSource(**kwargs)
    return source, next(source.runs())


def events(params: Any, rank: int, size: int) -> Iterator[Event]:
    """Yield this rank's events that hold the detector (the others are counted by the caller)."""
    source, run = open_run(params, size)  # noqa: RUF059  (a DataSource that is collected closes its files)
    names = set(run.detnames)
    if params.det_name not in names:
        raise ValueError(f"no detector {params.det_name!r} in run {run.runnum}; found {sorted(names)}")
    det = run.Detector(params.det_name)
    timing = run.Detector("timing") if "timing" in names else None
    ebeam = run.Detector("ebeamh") if "ebeamh" in names else None
    epics = set(getattr(run, "epicsinfo", {}) or {})
    epics_names = {key[0] if isinstance(key, tuple) else key for key in epics}
    wavelength = run.Detector(PHOTON_WAVELENGTH_PV) if PHOTON_WAVELENGTH_PV in epics_names else None
    clen_pv = _clen_reader(run, params.pv_camera_length, epics_names)
    if params.event_logic and timing is None:
        raise ValueError(f"event_logic needs the timing detector's event codes; run {run.runnum} has no 'timing'")
    first = True
    for index, evt in enumerate(run.events()):
        if size == 2 and index % size != rank:
            continue
        if params.event_logic and not _has_code(timing.raw.eventcodes(evt), params.event_code):
            continue
        data = det.raw.calib(evt)
        stamp = timing.raw.timestamp(evt) if timing is not None else None
        stamp = int(stamp if stamp else evt.timestamp)
        energy = _photon_energy(evt, ebeam, wavelength)
        clen = float(params.pv_camera_length) if clen_pv is None else _float(clen_pv(evt))
        mask = None
        if first and data is not None:
            first = False
            if params.psana_mask and hasattr(det.raw, "_mask"):
                mask = det.raw._mask()
        yield Event(data, stamp >> 32, stamp & 0xFFFFFFFF, stamp & 0x1FFFF, energy, clen, mask)


def _has_code(codes: Any, code: int) -> bool:
    # LCLS-II timing: one flag per event code (index = code).
    return codes is not None and 0 <= code < len(codes) and bool(codes[code])


def _clen_reader(run: Any, pv: Any, epics_names: Any) -> Optional[Any]:
    if isinstance(pv, float):
        return None
    if pv not in epics_names:
        raise ValueError(f"pv_camera_length {pv!r} is not a PV of run {run.runnum}; give the distance as a number")
    return run.Detector(pv)


def _photon_energy(evt: Any, ebeam: Any, wavelength: Any) -> float:
    if ebeam is not None:
        energy = _float(ebeam.raw.ebeamPhotonEnergy(evt))
        if math.isfinite(energy):
            return energy
    if wavelength is not None:
        nm = _float(wavelength(evt))
        if nm > 0:
            return HC_EV_M / nm * 1e9
    return float("nan")


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def mpi_world() -> Any:
    """Return MPI.COMM_WORLD when running on more than one rank, else None (psana's own switch honoured)."""
    if os.environ.get("PS_PARALLEL", "mpi") != "mpi":
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None
