"""Reading a smalldata_tools-layout HDF5 file for the analyzers, one MPI rank's share of events at a time.

Owns where the analyzers find things, with upstream LUTE's fallbacks: the event count
(``event_time`` or ``timestamp``), the scattering detector (given, or the first large detector
present), its azimuthal integration (smalldata_tools' ``<det>/azav_azav`` with
``UserDataCfg/<det>/azav__azav_q``/``_phiVec``, else pyFAI's ``<det>/pyfai_azav``/``pyfai_q``/
``pyfai_az``; a 1-D integration gets one phi bin), light status, I0, the scan variable
(``scan/<name>``, else ``enc/lasDelay`` as ``lxt_fast``). Runs in the psana2 image (h5py). It must
not compute anything but slices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

import h5py
import numpy as np

LARGE_DETNAMES = ("epix10k2M", "Rayonix", "Jungfrau4M")


@dataclass
class Share:
    """This rank's contiguous slice of the file's events."""

    total: int
    start: int
    stop: int
    counts: List[int]


def share_of(total: int, rank: int, size: int) -> Share:
    """Split ``total`` events into ``size`` contiguous slices, the first ones one longer (as upstream)."""
    quotient, remainder = divmod(total, size)
    counts = [quotient + 1 if r < remainder else quotient for r in range(size)]
    start = sum(counts[:rank])
    return Share(total, start, start + counts[rank], counts)


def event_count(h5: h5py.File) -> int:
    """Number of events: ``event_time`` (psana1 files) or ``timestamp`` (psana2 files)."""
    for key in ("event_time", "timestamp"):
        if key in h5:
            return int(h5[key].shape[0])
    raise KeyError("neither event_time nor timestamp in the file: is it a small-data file?")


def xss_detector(h5: h5py.File, given: Optional[str]) -> str:
    """The scattering detector: the given one, else the first large detector in the file."""
    if given:
        return given
    for key in LARGE_DETNAMES:
        if key in h5:
            return key
    raise KeyError(f"No XSS detname provided and could not determine detname (looked for {', '.join(LARGE_DETNAMES)})")


def azimuthal(h5: h5py.File, det: str, share: Share) -> Tuple[Any, Any, Any, str]:
    """Return (az (events, phi, q), q, phi, source) of ``det``: smalldata_tools' own, else pyFAI's."""
    sl = slice(share.start, share.stop)
    if f"{det}/azav_azav" in h5:
        az = np.asarray(h5[f"{det}/azav_azav"][sl], dtype=np.float64)
        q = np.asarray(h5[f"UserDataCfg/{det}/azav__azav_q"][()])
        phi = np.asarray(h5[f"UserDataCfg/{det}/azav__azav_phiVec"][()])
        source = "azav"
    elif f"{det}/pyfai_azav" in h5:
        az = np.asarray(h5[f"{det}/pyfai_azav"][sl], dtype=np.float64)
        q = np.asarray(h5[f"{det}/pyfai_q"][0])
        phi = np.asarray(h5[f"{det}/pyfai_az"][0]) if f"{det}/pyfai_az" in h5 else np.zeros(1)
        source = "pyfai"
    else:
        raise KeyError(f"No azimuthal integration data found for {det} ({det}/azav_azav or {det}/pyfai_azav)")
    if az.ndim == 2:  # a 1-D integration: one phi bin
        az = az[:, np.newaxis, :]
    return az, q, phi, source


def optional(h5: h5py.File, key: Optional[str], share: Share) -> Optional[Any]:
    """The rank's slice of a per-event dataset, or None when absent."""
    if key and key in h5:
        return np.asarray(h5[key][share.start : share.stop], dtype=np.float64)
    return None


def required(h5: h5py.File, key: str, share: Share, what: str) -> Any:
    """The rank's slice of a per-event dataset that must be there."""
    values = optional(h5, key, share)
    if values is None:
        raise KeyError(f"{what} {key!r} not found in {h5.filename}")
    return values


def light(h5: h5py.File, share: Share) -> Tuple[Any, Any]:
    """(xray, laser) status per event; 1 everywhere when the file has no lightStatus group."""
    n = share.stop - share.start
    xray = optional(h5, "lightStatus/xray", share)
    laser = optional(h5, "lightStatus/laser", share)
    return (np.ones(n) if xray is None else xray), (np.ones(n) if laser is None else laser)


def scan(h5: h5py.File, names: Union[str, List[str], None], share: Share) -> Tuple[Optional[str], Optional[Any]]:
    """The first scan variable found (``scan/<name>``), else a fast delay scan (``enc/lasDelay``)."""
    for name in [names] if isinstance(names, str) else (names or []):
        values = optional(h5, f"scan/{name}", share)
        if values is not None:
            return name, values
    values = optional(h5, "enc/lasDelay", share)
    if values is not None:
        return "lxt_fast", values
    return None, None


def event_codes(h5: h5py.File, codes: List[int], share: Share) -> Dict[int, Any]:
    """Per-event flags of extra event codes: psana1's ``evr/code_<n>`` or psana2's ``timing/eventcodes``."""
    found: Dict[int, Any] = {}
    for code in sorted(codes):
        if f"evr/code_{code}" in h5:
            found[code] = np.asarray(h5[f"evr/code_{code}"][share.start : share.stop]) == 1
        elif "timing/eventcodes" in h5:
            found[code] = np.asarray(h5["timing/eventcodes"][share.start : share.stop, code]) == 1
    return found
