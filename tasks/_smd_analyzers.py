"""The three small-data analyses, run on every MPI rank over its share of the file's events.

Owns the order of work of ``AnalyzeSmallDataXSS``, ``XAS`` and ``XES`` (upstream LUTE's
``_smalldata.py``): read the rank's events (``_smd_read``), filter them, reduce per-bin sums across
ranks (``_smd_mpi``), then on rank 0 derive the numbers (``_smd_analysis``) and draw the figures
(``_smd_figures``). Each returns (summary, payload) on rank 0 and None elsewhere. Runs in the psana2
image. It must not know the kernel.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import h5py
import numpy as np

from . import _smd_analysis as math_
from . import _smd_read as read
from ._smd_analysis_params import (
    AnalyzeSmallDataXASParameters,
    AnalyzeSmallDataXESParameters,
    AnalyzeSmallDataXSSParameters,
    _AnalyzeParameters,
)
from ._smd_mpi import World

Outcome = Optional[Tuple[Dict[str, Any], Dict[str, Any]]]
Q_NORM = (0.9, 3.5)  # upstream's q range (1/Angstrom) for per-shot normalisation
WATER_NORM = (1.5, 3.5)  # upstream's water ring, the XAS normaliser


class Standard:
    """What every analysis reads: the rank's share, scattering, light status, I0, filters, the scan."""

    def __init__(self, h5: h5py.File, params: _AnalyzeParameters, world: World, need_scattering: bool) -> None:
        self.share = read.share_of(read.event_count(h5), world.rank, world.size)
        self.az: Any = None
        self.q: Any = None
        self.xss_det: Optional[str] = None
        try:
            self.xss_det = read.xss_detector(h5, params.xss_detname)
            self.az, self.q, self.phi, _ = read.azimuthal(h5, self.xss_det, self.share)
        except KeyError:
            if need_scattering:
                raise
        self.ipm = read.optional(h5, params.ipm_var, self.share)
        xray, laser = read.light(h5, self.share)
        total = None if self.az is None else np.nansum(self.az, axis=(1, 2))
        t = params.thresholds
        self.filters = math_.standard_filters(xray, laser, self.ipm, total, t.min_ipm, t.min_Iscat)
        self.scan_name, self.scan = read.scan(h5, params.scan_var, self.share)
        self.on = math_.combine(self.filters, math_.LASER_ON)
        self.off = math_.combine(self.filters, math_.LASER_OFF)

    def scan_binning(self, world: World) -> Tuple[Any, bool, Any]:
        """(bins, exact, per-event bin) over every rank's scan values; one bin when nothing was scanned."""
        if self.scan is None:
            return np.zeros(1), True, np.zeros(self.on.size, dtype=np.int64)
        bins, exact = math_.scan_bins(world.concat(self.scan), fast="lxt_fast" in str(self.scan_name))
        return bins, exact, math_.bin_index(np.nan_to_num(self.scan), bins, exact)

    def counts(self, world: World) -> Dict[str, int]:
        """Events in the file and passing the laser on/off filters (all ranks)."""
        on, off = world.sum([self.on.sum(), self.off.sum()])
        return {"events": self.share.total, "laser_on": int(on), "laser_off": int(off)}


def global_mean(world: World, values: Any, mask: Any) -> Any:
    """Mean over the selected events of every rank, ignoring NaN."""
    sums, counts = math_.binned_sums(values[mask], np.zeros(int(mask.sum()), dtype=np.int64), 1)
    return math_.mean_of(world.sum(sums), world.sum(counts))[0]


def binned_mean(world: World, values: Any, index: Any, nbins: int) -> Any:
    """Per-bin means (nbins, ...) over every rank's events."""
    sums, counts = math_.binned_sums(values, index, nbins)
    return math_.mean_of(world.sum(sums), world.sum(counts))


def analyze_xss(params: AnalyzeSmallDataXSSParameters, world: World) -> Outcome:
    """Difference scattering by scan bin; the ring's q and, for a delay scan, the half-rise (t0)."""
    from ._smd_figures import xss_figures

    with h5py.File(params.smd_path, "r") as h5:
        std = Standard(h5, params, world, need_scattering=True)
        codes = read.event_codes(h5, params.xss_event_codes or [], std.share)
    dark = global_mean(world, std.az, std.filters["xray off"]) if world.sum(std.filters["xray off"].sum()) else None
    az = std.az - dark if dark is not None and np.isfinite(dark).any() else std.az
    profiles = np.nanmean(math_.normalise(az, math_.q_range_norm(az, std.q, Q_NORM)), axis=1)  # (events, q)
    laser_off = global_mean(world, profiles, std.off)
    laser_on = global_mean(world, profiles, std.on)
    bins, exact, index = std.scan_binning(world)
    nbins = bins.size if exact else bins.size - 1
    binned_on = binned_mean(world, profiles, np.where(std.on, index, -1), nbins)  # (bins, q)
    diff = (np.nan_to_num(binned_on) - np.nan_to_num(laser_off)).T  # (q, bins), as upstream
    tjumps = {
        c: global_mean(world, profiles, std.filters["xray on"] & f & std.filters["ipm"]) - laser_off
        for c, f in codes.items()
    }
    counts = std.counts(world)
    if world.rank != 0:
        return None
    centers = bins if exact else 0.5 * (bins[1:] + bins[:-1])
    strongest = math_.strongest_bin(diff)
    ring_q = math_.peak_position(std.q, diff[:, strongest], largest_absolute=True)
    window = np.abs(std.q - ring_q) <= 2.5 * np.median(np.diff(std.q))
    trace = np.nanmean(diff[window], axis=0)
    t0 = math_.half_rise(centers, trace) if std.scan is not None and centers.size >= 3 else None
    name = std.scan_name or "by_event"
    figures = xss_figures(params.figure_prefix, std.q, laser_on, laser_off, centers, diff, trace, name, t0, tjumps)
    summary = {
        **counts,
        "scan_var": name,
        "bins": int(centers.size),
        "ring_q": round(ring_q, 4),
        "t0": None if t0 is None else float(f"{t0:.4g}"),
        "figures": len(figures),
    }
    payload = {
        "smd_path": params.smd_path,
        "detector": std.xss_det,
        "scan_var": name,
        "bins": centers.tolist(),
        "ring_q": ring_q,
        "t0": t0,
        "figures": figures,
        "event_codes": {str(c): float(np.nanmax(np.abs(v))) for c, v in tjumps.items()},
    }
    return summary, payload


def analyze_xas(params: AnalyzeSmallDataXASParameters, world: World) -> Outcome:
    """Absorption (ROI over the I0 or water-ring norm) by CCM energy, laser on and off: the edges."""
    from ._smd_figures import xas_figures

    with h5py.File(params.smd_path, "r") as h5:
        std = Standard(h5, params, world, need_scattering=False)
        signal = read.required(h5, f"{params.xas_detname}/ROI_0_sum", std.share, "XAS signal")
        ccm = read.required(h5, params.ccm, std.share, "CCM readback")
        ccm_set = read.optional(h5, params.ccm_set, std.share)
    norm, norm_name = std.ipm, "I0"
    if std.az is not None:
        water = np.nanmean(math_.q_range_norm(std.az, std.q, WATER_NORM), axis=1)
        if world.sum(np.sum(~(water > 0) & std.on)) == 0:  # upstream falls back to I0 on a bad norm
            norm, norm_name = water, "water ring"
    if norm is None:
        raise KeyError(f"no I0 ({params.ipm_var}) and no scattering for normalisation in {params.smd_path}")
    xas = signal / np.where(norm > 0, norm, np.nan)
    if ccm_set is not None:
        edges = math_.setpoint_edges(world.concat(ccm_set))
    else:
        unique = np.unique(world.concat(ccm)[np.isfinite(world.concat(ccm))])
        edges = np.histogram_bin_edges(unique, bins=min(50, unique.size))
    index = math_.bin_index(ccm, edges, exact=False)
    nbins = edges.size - 1
    spectra = {
        name: binned_mean(world, xas, np.where(mask, index, -1), nbins)
        for name, mask in (("laser on", std.on), ("laser off", std.off))
    }
    counts = std.counts(world)
    if world.rank != 0:
        return None
    if nbins <= 2:
        raise ValueError(f"only {nbins} CCM energy bins in {params.smd_path}: the CCM was not scanned")
    energies = 0.5 * (edges[1:] + edges[:-1])
    edge_on = math_.edge_position(energies, spectra["laser on"])
    edge_off = math_.edge_position(energies, spectra["laser off"])
    figures = xas_figures(params.figure_prefix, energies, spectra["laser on"], spectra["laser off"], edge_on, edge_off)
    summary = {
        **counts,
        "energy_bins": nbins,
        "norm": norm_name,
        "edge_eV_laser_off": round(edge_off, 3),
        "edge_eV_laser_on": round(edge_on, 3),
        "edge_shift_eV": round(edge_on - edge_off, 3),
        "figures": len(figures),
    }
    payload = {
        "smd_path": params.smd_path,
        "detector": params.xas_detname,
        "energies": energies.tolist(),
        "edge_eV_laser_off": edge_off,
        "edge_eV_laser_on": edge_on,
        "figures": figures,
    }
    return summary, payload


def analyze_xes(params: AnalyzeSmallDataXESParameters, world: World) -> Outcome:
    """Emission spectra projected from the spectrometer ROI, laser on and off, and by scan bin."""
    from ._smd_figures import xes_figures

    with h5py.File(params.smd_path, "r") as h5:
        std = Standard(h5, params, world, need_scattering=False)
        areas = read_areas(h5, f"{params.xes_detname}/ROI_0_area", std.share, params.batch_size, params.rot_angle)
    center = math_.spatial_center(world.sum(np.nansum(areas, axis=0)), params.invert_xes_axes)
    spectra = math_.project_spectra(areas, center, params.invert_xes_axes)
    on, off = global_mean(world, spectra, std.on), global_mean(world, spectra, std.off)
    bins, exact, index = std.scan_binning(world)
    nbins = bins.size if exact else bins.size - 1
    normed = spectra / (std.ipm[:, np.newaxis] if std.ipm is not None else 1.0)
    binned = {
        name: binned_mean(world, normed, np.where(mask, index, -1), nbins)
        for name, mask in (("laser on", std.on), ("laser off", std.off))
    }
    counts = std.counts(world)
    if world.rank != 0:
        return None
    pixels = np.arange(on.size, dtype=np.float64)
    diff = on - off
    centers = bins if exact else 0.5 * (bins[1:] + bins[:-1])
    scan_diff = (np.nan_to_num(binned["laser on"]) - np.nan_to_num(binned["laser off"])).T
    name = std.scan_name or "by_event"
    line_off, line_on = math_.peak_position(pixels, off), math_.peak_position(pixels, on)
    figures = xes_figures(params.figure_prefix, pixels, on, off, centers, scan_diff, name)
    summary = {
        **counts,
        "scan_var": name,
        "bins": int(centers.size),
        "spatial_center": center,
        "line_pixel_laser_off": round(line_off, 3),
        "line_pixel_laser_on": round(line_on, 3),
        "diff_max_pixel": int(np.argmax(diff)),
        "diff_min_pixel": int(np.argmin(diff)),
        "figures": len(figures),
    }
    payload = {
        "smd_path": params.smd_path,
        "detector": params.xes_detname,
        "scan_var": name,
        "bins": centers.tolist(),
        "line_pixel_laser_off": line_off,
        "line_pixel_laser_on": line_on,
        "figures": figures,
    }
    return summary, payload


def read_areas(h5: h5py.File, key: str, share: read.Share, batch_size: int, rot_angle: Optional[float]) -> Any:
    """The rank's ROI images, read in batches if asked, rotated by ``rot_angle`` degrees if asked."""
    if key not in h5:
        raise KeyError(f"XES ROI {key!r} not found in {h5.filename} (getROIs with writeArea: true)")
    step = batch_size or max(share.stop - share.start, 1)
    parts = []
    for start in range(share.start, share.stop, step):
        part = np.asarray(h5[key][start : min(start + step, share.stop)], dtype=np.float64)
        if rot_angle is not None:
            from scipy.ndimage import rotate

            part = rotate(part, angle=rot_angle, axes=(2, 1), reshape=False)
        parts.append(part)
    shape = h5[key].shape[1:]
    return np.concatenate(parts) if parts else np.zeros((0, *shape))
