"""Bragg peak finders of psana2, behind one call per event, with upstream LUTE's output layouts.

Owns turning one event's detector array into a peak list: ``Peakfinder8`` (Cheetah's peakfinder8,
``psana.peakfinder8.peakfinder_8``, on the CrystFEL slab: panels stacked along the slow-scan axis),
``Peakfinder8_v2`` (the same finder panel by panel, positions within the panel plus its number) and
``PyAlgos`` (psalg's adaptive ``peak_finder_v3r3``, ``psana.psalg_ext.peak_finder_algos``, panel by
panel). Peakfinder8 lists are dicts (``fs``, ``ss``, ``intensity``, ...); PyAlgos peaks are rows of
psana1's 17 columns (seg, row, col, npix, amax, atot, rcent, ccent, rsigma, csigma, rmin, rmax,
cmin, cmax, bkgd, rms, son), so the CXI writer treats both versions of psana alike. Imported inside
the image only (psana, numpy). Must not read events or write files.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

PYALGOS_COLUMNS = 17


def slab(array: Any) -> Any:
    """Return a (panels, ss, fs) array as the 2D CrystFEL slab (panels stacked along ss)."""
    return array.reshape(-1, array.shape[-1]) if array.ndim == 3 else array


def peakfinder8(params: Any, mask: Any, radius: Any, shape: Any) -> Callable[[Any], Dict[str, List[float]]]:
    """Return a per-event peakfinder8 on the slab of a ``shape`` (panels, ss, fs) detector."""
    import numpy as np
    from psana.peakfinder8 import peakfinder_8

    panels, rows, cols = (1, *shape) if len(shape) == 2 else shape
    mask8 = np.ascontiguousarray(slab(mask), dtype=np.int8)
    pix_r = np.ascontiguousarray(radius, dtype=np.float32)
    if pix_r.shape != mask8.shape:
        raise ValueError(f"the geometry's radius map is {pix_r.shape}, the detector's slab is {mask8.shape}")

    def find(data: Any) -> Dict[str, List[float]]:
        found = peakfinder_8(
            params.max_peaks,
            np.ascontiguousarray(slab(data), dtype=np.float32),
            mask8,
            pix_r,
            cols,
            rows,
            1,
            panels,
            params.amax_thr,
            params.son_min,
            params.npix_min,
            params.npix_max,
            int(params.r0),
        )
        return _pf8_lists(found)

    return find


def peakfinder8_v2(params: Any, mask: Any, radius: Any, shape: Any) -> Callable[[Any], Dict[str, List[float]]]:
    """Return a per-event peakfinder8 run panel by panel (no slab): positions within each panel."""
    import numpy as np
    from psana.peakfinder8 import peakfinder_8

    panels, rows, cols = (1, *shape) if len(shape) == 2 else shape
    masks = np.ascontiguousarray(mask.reshape(panels, rows, cols), dtype=np.int8)
    radii = np.ascontiguousarray(radius.reshape(panels, rows, cols), dtype=np.float32)

    def find(data: Any) -> Dict[str, List[float]]:
        frames = np.ascontiguousarray(data.reshape(panels, rows, cols), dtype=np.float32)
        merged: Dict[str, List[float]] = {key: [] for key in (*_PF8_KEYS, "panel_number")}
        for panel in range(panels):
            found = peakfinder_8(
                params.max_peaks, frames[panel], masks[panel], radii[panel], cols, rows, 1, 1,
                params.amax_thr, params.son_min, params.npix_min, params.npix_max, int(params.r0),
            )  # fmt: skip
            lists = _pf8_lists(found)
            for key in _PF8_KEYS:
                merged[key].extend(lists[key])
            merged["panel_number"].extend([panel] * len(lists["fs"]))
        keep = min(len(merged["fs"]), params.max_peaks)
        return {key: values[:keep] for key, values in merged.items()}

    return find


_PF8_KEYS = ("fs", "ss", "intensity", "num_pixels", "max_pixel_intensity", "snr")


def _pf8_lists(found: Any) -> Dict[str, List[float]]:
    # peakfinder_8 returns (x, y, total, index, npix, max, sigma, snr): upstream keeps all but index/sigma.
    return {
        "fs": list(found[0]),
        "ss": list(found[1]),
        "intensity": list(found[2]),
        "num_pixels": list(found[4]),
        "max_pixel_intensity": list(found[5]),
        "snr": list(found[7]),
    }


def pyalgos(params: Any, mask: Any, shape: Any) -> Callable[[Any], Any]:
    """Return a per-event psalg v3r3 (upstream's PyAlgos ``peak_finder_v3r3``): an (n, 17) array."""
    import numpy as np
    from psana.psalg_ext import peak_finder_algos

    panels, rows, cols = (1, *shape) if len(shape) == 2 else shape
    masks = np.ascontiguousarray(mask.reshape(panels, rows, cols), dtype=np.uint16)
    finders = []
    for seg in range(panels):
        finder = peak_finder_algos(seg, 0)  # pbits=0: quiet
        finder.set_peak_selection_parameters(
            float(params.npix_min), float(params.npix_max), params.amax_thr, params.atot_thr, params.son_min
        )
        finders.append(finder)

    def find(data: Any) -> Any:
        frames = np.ascontiguousarray(data.reshape(panels, rows, cols), dtype=np.float32)
        rows_out = []
        for seg, finder in enumerate(finders):
            for p in finder.peak_finder_v3r3_d2(
                frames[seg], masks[seg], params.peak_rank, params.r0, params.dr, params.nsigm
            ):
                rows_out.append(
                    [seg, p.row, p.col, p.npix, p.amp_max, p.amp_tot, p.row_cgrav, p.col_cgrav, p.row_sigma,
                     p.col_sigma, p.row_min, p.row_max, p.col_min, p.col_max, p.bkgd, p.noise, p.son]
                )  # fmt: skip
        return np.asarray(rows_out, dtype=np.float64).reshape(-1, PYALGOS_COLUMNS)

    return find


def count(peaks: Any) -> int:
    """Return how many peaks a finder's result holds (dict lists or PyAlgos rows)."""
    return len(peaks["fs"]) if isinstance(peaks, dict) else int(peaks.shape[0])


def slab_positions(peaks: Any, rows: int) -> List[List[float]]:
    """Return [ss, fs] of each peak in slab coordinates (what the CXI file's peak lists hold)."""
    if isinstance(peaks, dict):
        panel = peaks.get("panel_number") or [0] * len(peaks["fs"])
        return [[ss + n * rows, fs] for fs, ss, n in zip(peaks["fs"], peaks["ss"], panel)]
    return [[seg * rows + row, col] for seg, row, col in peaks[:, :3].tolist()]
