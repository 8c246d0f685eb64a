"""The arithmetic of the small-data analyzers (XSS, XAS, XES), on numpy arrays only.

Owns what ``AnalyzeSmallDataXSS``/``XAS``/``XES`` compute, as upstream LUTE's ``_smalldata.py``
does: event filters (X-rays/laser on or off, I0 and total-scattering thresholds), q-range
normalisation, scan and CCM-energy binning, laser on/off differences, the emission projection;
plus the numbers our summaries report (the difference ring's q, the half-rise delay, the absorption
edge, the emission line). Binned results are kept as sums and counts, so MPI ranks add theirs before
anything is divided. Pure functions, tested on the host; it must not read files or import h5py/MPI.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
LASER_ON = ("xray on", "laser on", "ipm", "total scattering")
LASER_OFF = ("xray on", "laser off", "ipm", "total scattering")


def standard_filters(
    xray: npt.ArrayLike,
    laser: npt.ArrayLike,
    ipm: Optional[npt.ArrayLike],
    total: Optional[npt.ArrayLike],
    min_ipm: float,
    min_iscat: float,
) -> Dict[str, Mask]:
    """Return upstream's named event filters; a missing I0 or scattering sum filters nothing."""
    xray_a, laser_a = np.asarray(xray), np.asarray(laser)
    n = xray_a.shape[0]
    filters = {"xray on": xray_a == 1, "xray off": xray_a == 0, "laser on": laser_a == 1, "laser off": laser_a == 0}
    filters["ipm"] = np.asarray(ipm) > min_ipm if ipm is not None else np.ones(n, dtype=bool)
    filters["total scattering"] = np.asarray(total) > min_iscat if total is not None else np.ones(n, dtype=bool)
    return filters


def combine(filters: Dict[str, Mask], names: Sequence[str]) -> Mask:
    """AND the named filters (unknown names are ignored, as upstream does)."""
    n = next(iter(filters.values())).shape[0]
    total = np.ones(n, dtype=bool)
    for name in names:
        if name in filters:
            total &= filters[name]
    return total


def q_range_norm(az: Array, q: Array, limits: Tuple[float, float]) -> Array:
    """Mean of each (event, phi) profile over ``limits[0] < q < limits[1]``; shape (events, phi)."""
    inside = (q > limits[0]) & (q < limits[1])
    if not inside.any():
        raise ValueError(f"no q values inside the normalisation range {limits} (q spans {q.min():.3g}..{q.max():.3g})")
    with np.errstate(invalid="ignore"):
        return np.asarray(np.nanmean(az[..., inside], axis=-1))


def normalise(az: Array, norm: Array) -> Array:
    """Divide profiles by their norm; a zero or missing norm gives NaN (that profile is skipped)."""
    norm = np.where(np.isfinite(norm) & (norm != 0), norm, np.nan)
    return np.asarray(az / norm[(...,) + (np.newaxis,) * (az.ndim - norm.ndim)])


def scan_bins(values: Array, fast: bool, nbins: int = 51) -> Tuple[Array, bool]:
    """Return (bins, exact): the distinct scan values, or for a fast delay scan ``nbins`` histogram edges."""
    finite = np.unique(np.nan_to_num(values))
    if fast:
        return np.histogram_bin_edges(finite, bins=nbins), False
    return finite, True


def setpoint_edges(setpoints: Array) -> Array:
    """Bin edges halfway between distinct CCM set points (the outer edges on the end points)."""
    centers = np.unique(setpoints[np.isfinite(setpoints)])
    edges = np.empty(centers.size + 1)
    edges[1:-1] = (centers[1:] + centers[:-1]) / 2
    edges[0], edges[-1] = centers[0], centers[-1]
    return edges


def bin_index(keys: Array, bins: Array, exact: bool) -> npt.NDArray[np.int64]:
    """Return each event's bin (-1: none): equal to a value, or in [edge, next edge) (the last edge closed)."""
    if exact:
        index = np.searchsorted(bins, keys)
        index = np.clip(index, 0, bins.size - 1)
        return np.where(bins[index] == keys, index, -1).astype(np.int64)
    index = np.searchsorted(bins, keys, side="right") - 1
    index = np.where(keys == bins[-1], bins.size - 2, index)
    return np.where((index >= 0) & (index < bins.size - 1), index, -1).astype(np.int64)


def binned_sums(values: Array, index: npt.NDArray[np.int64], nbins: int) -> Tuple[Array, Array]:
    """Sum ``values`` (events, ...) per bin, ignoring NaN; return (sums (nbins, ...), counts (nbins, ...))."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.zeros((nbins, *values.shape[1:]))
    counts = np.zeros((nbins, *values.shape[1:]))
    good = index >= 0
    finite = np.isfinite(values)
    np.add.at(sums, index[good], np.where(finite, values, 0.0)[good])
    np.add.at(counts, index[good], finite[good].astype(np.float64))
    return sums, counts


def mean_of(sums: Array, counts: Array) -> Array:
    """Sums over counts; NaN where nothing was counted."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.where(counts > 0, counts, 1), np.nan)


def strongest_bin(diff: Array) -> int:
    """Index of the scan bin (column of ``diff`` (q, bins)) with the largest absolute difference signal."""
    return int(np.nanargmax(np.nansum(np.abs(diff), axis=0)))


def peak_position(x: Array, y: Array, largest_absolute: bool = False) -> float:
    """The position of ``y``'s maximum (of ``|y|`` if asked), refined by a parabola through 3 points."""
    values = np.abs(y) if largest_absolute else y
    values = np.where(np.isfinite(values), values, -np.inf)
    i = int(np.argmax(values))
    if 0 < i < len(x) - 1 and np.all(np.isfinite(values[i - 1 : i + 2])):
        a, b, c = values[i - 1 : i + 2]
        denom = a - 2 * b + c
        offset = 0.5 * (a - c) / denom if denom != 0 else 0.0
        step = x[i + 1] - x[i] if offset > 0 else x[i] - x[i - 1]
        return float(x[i] + offset * step)
    return float(x[i])


def half_rise(x: Array, y: Array) -> Optional[float]:
    """Where ``y`` first crosses halfway from its start level to its end level (linear interpolation).

    The overlap (t0) of a pump-probe delay scan: the difference signal turns on around it.
    """
    good = np.isfinite(y)
    x, y = x[good], y[good]
    if x.size < 3:
        return None
    start, end = float(np.mean(y[: max(1, x.size // 4)])), float(np.mean(y[-max(1, x.size // 4) :]))
    half = (start + end) / 2
    rising = end > start
    for i in range(x.size - 1):
        lo, hi = y[i], y[i + 1]
        if (lo <= half < hi) if rising else (lo >= half > hi):
            return float(x[i] + (half - lo) / (hi - lo) * (x[i + 1] - x[i]))
    return None


def edge_position(energies: Array, spectrum: Array) -> float:
    """An absorption edge: where the spectrum rises fastest (its gradient's maximum, refined)."""
    good = np.isfinite(spectrum)
    e, s = energies[good], spectrum[good]
    return peak_position(0.5 * (e[1:] + e[:-1]), np.diff(s) / np.diff(e))


def spatial_center(area_sum: Array, invert: bool) -> int:
    """Where the emission is brightest across the dispersion direction (upstream's ``guess_idx``).

    ``area_sum`` is the ROI summed over events; the spectrum runs along its first axis (its second
    with ``invert``), so the profile across it is the sum over that axis.
    """
    return int(np.nanargmax(np.nansum(area_sum, axis=1 if invert else 0)))


def project_spectra(areas: Array, center: int, invert: bool, half_width: int = 5) -> Array:
    """Emission spectra (events, pixels): sum a band of ``2*half_width`` pixels around ``center``.

    As upstream: by default the spectrum runs along the ROI's first image axis and the band is taken
    on its second (``invert_xes_axes`` swaps them).
    """
    lo, hi = max(center - half_width, 0), center + half_width
    if invert:
        return np.asarray(np.nansum(areas[:, lo:hi, :], axis=1))
    return np.asarray(np.nansum(areas[..., lo:hi], axis=2))
