"""Per-event reductions of the small-data producer that need numpy only (ROIs, light status, PV names).

Owns the arithmetic the producer applies to one event's arrays, written as pure functions so that
they are tested on the host: ROI bounds to index, ROI sum and area with an ADU threshold, the X-ray
and laser status from event codes (smalldata_tools' ``lightStatus`` rules), and PV/alias pairs.
It must not import psana, h5py or pyFAI.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

HUTCH_LIGHT_CODES: Dict[str, Tuple[List[int], List[int]]] = {
    # smalldata_tools' hutch defaults (beam codes, laser codes): a negative code must be present
    # (a requested shot), a positive one must be absent (a dropped shot).
    "mfx": ([-137], [-203]),
    "xpp": ([-137], [89]),
    "xcs": ([-137], [89]),
    "cxi": ([-137], [-183]),
}
DEFAULT_LIGHT_CODES: Tuple[List[int], List[int]] = ([-137], [89])


def roi_index(bounds: Sequence[Sequence[int]], shape: Tuple[int, ...]) -> Tuple[slice, ...]:
    """Return the index of ``[[start, stop), ...]`` on the last axes of an array of ``shape``.

    Leading axes the ROI does not name are kept whole (a 2-D ROI on a (segments, rows, cols)
    array takes every segment), as smalldata_tools' ROIs on psana's calibrated arrays.
    """
    if not bounds or len(bounds) > len(shape):
        raise ValueError(f"ROI {list(map(list, bounds))} does not fit an array of shape {shape}")
    trailing = shape[len(shape) - len(bounds) :]
    index: List[slice] = [slice(None)] * (len(shape) - len(bounds))
    for axis, (bound, extent) in enumerate(zip(bounds, trailing)):
        if len(bound) != 2:
            raise ValueError(f"ROI axis {axis}: {list(bound)} is not a [start, stop) pair")
        start, stop = int(bound[0]), int(bound[1])
        if not 0 <= start < stop <= extent:
            raise ValueError(f"ROI axis {axis}: [{start}, {stop}) is outside 0..{extent} (array shape {shape})")
        index.append(slice(start, stop))
    return tuple(index)


def roi_values(data: Any, index: Tuple[slice, ...], thres_adu: Optional[float]) -> Tuple[float, Any]:
    """Return (sum, area) of one ROI: pixels below ``thres_adu`` count as 0; singleton axes dropped."""
    import numpy as np

    area = np.asarray(data[index], dtype=np.float64)
    if thres_adu is not None:
        area = np.where(area < thres_adu, 0.0, area)
    while area.ndim > 2 and area.shape[0] == 1:  # one segment of a multi-segment array: an image
        area = area[0]
    return float(np.nansum(area)), area


def light_status(event_codes: Optional[Sequence[int]], codes: Tuple[List[int], List[int]]) -> Dict[str, int]:
    """Return {"xray": 0|1, "laser": 0|1} from an event's code bits (smalldata_tools' rules).

    A negative code means "on only when this code fires"; a positive one "off when it fires".
    Without any codes (no timing data) both are 1, as smalldata_tools assumes.
    """
    if event_codes is None:
        return {"xray": 1, "laser": 1}

    def status(wanted: List[int]) -> int:
        required = [-c for c in wanted if c < 0]
        dropped = [c for c in wanted if c > 0]
        on = 1
        if required:
            on = int(any(_fired(event_codes, c) for c in required))
        if any(_fired(event_codes, c) for c in dropped):
            on = 0
        return on

    return {"xray": status(codes[0]), "laser": status(codes[1])}


def _fired(event_codes: Sequence[int], code: int) -> bool:
    return 0 <= code < len(event_codes) and bool(event_codes[code])


def light_codes(hutch: str) -> Tuple[List[int], List[int]]:
    """Return the (beam, laser) event codes of a hutch (smalldata_tools' defaults)."""
    return HUTCH_LIGHT_CODES.get(hutch.lower(), DEFAULT_LIGHT_CODES)


def pv_alias(spec: Union[str, Sequence[str]]) -> Tuple[str, str]:
    """Return (pv, alias) of an ``epicsPV`` entry: a name (its own alias) or a [pv, alias] pair."""
    if isinstance(spec, str):
        return spec, spec
    if len(spec) != 2:
        raise ValueError(f"epicsPV entry {list(spec)!r} is neither a name nor a [pv, alias] pair")
    return str(spec[0]), str(spec[1])


def photon_energy_to_wavelength(energy_ev: float) -> float:
    """Return the X-ray wavelength in meters of a photon energy in eV."""
    if energy_ev <= 0:
        raise ValueError(f"photon energy must be positive, got {energy_ev} eV")
    return 1.23984198e-6 / energy_ev
