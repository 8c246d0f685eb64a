"""LCLS-I (psana1) events and PyAlgos for FindPeaksPyAlgos, as upstream LUTE reads them.

Owns opening ``exp=<exp>:run=<run>:smd`` with psana1's MPIDataSource (it shares events across MPI
ranks), the event-code filter, the camera length (a number, or an EPICS PV from the epics store),
the photon energy (EBeam, else the wavelength PV) and psana1's ``PyAlgos.peak_finder_v3r3``. Runs in
the psana1 image only (S3DF); never imported on the host. Must not write files.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from ._sfx_events import HC_EV_M, PHOTON_WAVELENGTH_PV, Event


def events(params: Any) -> Iterator[Event]:
    """Yield this rank's events (psana1 splits them over the MPI ranks)."""
    import numpy as np
    from psana import Detector, EventId, MPIDataSource

    header = params.lute_config
    source = MPIDataSource(f"exp={header.experiment}:run={header.run}:smd")
    if params.n_events:
        source.break_after(params.n_events)
    det = Detector(params.det_name)
    det.do_reshape_2d_to_3d(flag=True)
    evr, ebeam = Detector(params.event_receiver), Detector("EBeam")
    first = True
    for evt in source.events():
        if params.event_logic:
            codes = evr.eventCodes(evt)
            if codes is None or params.event_code not in codes:
                continue
        evt_id = evt.get(EventId)
        seconds, nanoseconds = evt_id.time()
        if isinstance(params.pv_camera_length, float):
            clen = params.pv_camera_length
        else:
            clen = float(source.env().epicsStore().value(params.pv_camera_length))
        try:
            energy = float(ebeam.get(evt).ebeamPhotonEnergy())
            if not np.isfinite(energy):
                raise ValueError("no beam energy")
        except (AttributeError, ValueError):
            energy = HC_EV_M / source.env().epicsStore().value(PHOTON_WAVELENGTH_PV) * 1e9
        event = Event(det.calib(evt), seconds, nanoseconds, evt_id.fiducials(), energy, clen)
        if first and event.data is not None and params.psana_mask:
            run = int(header.run)
            event.mask = det.mask(
                run, calib=False, status=True, edges=False, central=False, unbond=False, unbondnbrs=False
            )
        if event.data is not None:
            first = False
        yield event


def pyalgos_finder(params: Any, mask: Any, shape: Any) -> Callable[[Any], Any]:
    """Return psana1's PyAlgos v3r3 with upstream's selection parameters: an (n, 17) array per event."""
    import numpy as np
    from psalgos.pypsalgos import PyAlgos

    algos = PyAlgos(mask=np.asarray(mask, dtype=np.uint16), pbits=0)  # pbits: verbosity
    algos.set_peak_selection_pars(
        npix_min=params.npix_min, npix_max=params.npix_max, amax_thr=params.amax_thr,
        atot_thr=params.atot_thr, son_min=params.son_min,
    )  # fmt: skip

    def find(image: Any) -> Any:
        return algos.peak_finder_v3r3(image, rank=params.peak_rank, r0=params.r0, dr=params.dr, nsigm=params.nsigm)

    return find
