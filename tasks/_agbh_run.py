"""One run of OptimizeAgBhGeometryExhaustive on every MPI rank: read, search, gather, write.

Owns the order of work: the powder and the setup from the small-data file (``_geometry_io``), the
starting centres split over ranks, each rank's search (``_agbh``), the best candidate on rank 0, its
geometry files and the figure. Returns (summary, payload) on rank 0 and None elsewhere. Runs in the
psana2 image; it must not know the kernel.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _agbh
from ._geometry_io import read_mask, read_powder, recorded_setup, wavelength_m, write_geometry
from ._smd_mpi import World
from ._smd_read import share_of


def run_agbh(params: Any, world: World, log: logging.Logger) -> Optional[Tuple[Dict[str, Any], Dict[str, Any]]]:
    """Search for distance and centre; return rank 0's (summary, payload)."""
    powder = read_powder(params.powder, params.detname, prefer_max=False)
    mask = read_mask(params.mask, params.detname, params.powder)
    setup = recorded_setup(params.powder, params.detname)
    if "pixel_size" not in setup:
        raise ValueError(f"{params.powder}: no UserDataCfg/{params.detname}/pixel_size (SubmitSMD's pix_size)")
    pixel_mm = setup["pixel_size"] * 1e3
    wavelength_a = wavelength_m(setup) * 1e10
    distance_guess = params.distance_guess or (setup["dist"] * 1e3 if "dist" in setup else None)
    if not distance_guess:
        raise ValueError("no distance_guess and no pyFAI distance recorded for the detector: give distance_guess (mm)")
    powder = np.where(powder > params.threshold, 0.0, powder)
    shape = (int(powder.shape[0]), int(powder.shape[1]))
    starts = _agbh.center_guesses(shape, params.dx, params.dy, params.center_guess)
    mine = share_of(len(starts), world.rank, world.size)
    candidates = [
        candidate
        for start in starts[mine.start : mine.stop]
        for candidate in _agbh.optimize_from(
            powder, mask, start, distance_guess, wavelength_a, pixel_mm, params.n_peaks, params.n_iterations
        )
    ]
    log.info(
        "rank %d: %d starting centres, best score %.3g",
        world.rank,
        mine.stop - mine.start,
        max((c.score for c in candidates), default=float("nan")),
    )
    everyone = [c for part in world.gather(candidates) for c in part]
    if world.rank != 0:
        return None
    best = _agbh.best_of(everyone)
    resolution = _agbh.edge_resolution(shape, pixel_mm, best.distance, wavelength_a)
    cx, cy = best.center
    pixel_m = setup["pixel_size"]
    geometry = {
        "dist": best.distance / 1e3,
        "poni1": (cy + 0.5) * pixel_m,
        "poni2": (cx + 0.5) * pixel_m,
        "rot1": 0.0,
        "rot2": 0.0,
        "rot3": 0.0,
        "wavelength": wavelength_a / 1e10,
    }
    run = int(params.lute_config.run) if str(params.lute_config.run).isdigit() else 0
    out_file = os.path.join(params.geom_out_dir, f"r{run:04d}_agbh.data")
    files = write_geometry(
        out_file, run, params.detname, shape, pixel_m, geometry, {"score": best.score}, stem=f"r{run:04d}_agbh"
    )
    figure = draw(os.path.join(params.geom_out_dir, f"r{run:04d}_agbh.png"), powder, mask, best, pixel_mm, wavelength_a)
    summary = {
        "Detector distance (mm)": round(best.distance, 3),
        "Detector center (pixels)": (round(cx, 2), round(cy, 2)),
        "Detector edge resolution (A)": round(resolution, 2),
    }
    payload = {
        "distance_mm": best.distance,
        "center_px": [cx, cy],
        "edge_resolution_A": resolution,
        "score": best.score,
        "starting_centres": len(starts),
        **files,
        "figures": [figure],
    }
    return summary, payload


def draw(path: str, powder: Any, mask: Any, best: _agbh.Candidate, pixel_mm: float, wavelength_a: float) -> str:
    """The powder with the rings found, and its radial profile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profile = _agbh.radial_profile(powder, mask, best.center)
    peaks = _agbh.find_peaks(profile)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5))
    lo, hi = np.nanpercentile(powder, [1, 99])
    left.imshow(powder, vmin=lo, vmax=hi, cmap="viridis", origin="lower")
    for radius in peaks:
        left.add_patch(plt.Circle(best.center, radius, fill=False, color="red", linestyle="--", linewidth=0.8))
    left.plot(*best.center, "r+")
    left.set_title(f"center ({best.center[0]:.2f}, {best.center[1]:.2f}) px, {best.distance:.2f} mm")
    q = 2.0 * np.sin(np.arctan(np.arange(profile.size) * pixel_mm / best.distance) / 2.0) / wavelength_a
    right.plot(q, profile)
    right.plot(q[peaks], profile[peaks], "ro", markersize=3)
    right.set_xlabel("1/d (1/Å)")
    right.set_ylabel("radial profile")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
