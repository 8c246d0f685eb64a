"""One run of BayFAI on every MPI rank: the powder and detector, each rank's distance, the winner.

Owns the order of work of the ``BayFAI`` Task: read the powder, pixel size and photon energy
(``_geometry_io``), mask and threshold the powder as upstream's ``preprocess_powder`` (Imin is a
percentile of the non-zero pixels), run ``_bayfai_opt`` at this rank's distance, pick on rank 0 the
best score + lbda * penalty, write the geometry and a figure. Returns (summary, payload) on rank 0
and None elsewhere. Runs in the psana2 image; it must not know the kernel.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _bayfai_opt as opt
from ._geometry_io import read_powder, recorded_setup, wavelength_m, write_geometry
from ._smd_mpi import World


def run_bayfai(params: Any, world: World, log: logging.Logger) -> Optional[Tuple[Dict[str, Any], Dict[str, Any]]]:
    """Optimise the geometry; return rank 0's (summary, payload)."""
    from pyFAI.calibrant import get_calibrant
    from pyFAI.detectors import Detector

    powder = read_powder(params.h5, params.detname, prefer_max=True)
    setup = recorded_setup(params.h5, params.detname)
    if "pixel_size" not in setup:
        raise ValueError(f"{params.h5}: no UserDataCfg/{params.detname}/pixel_size (SubmitSMD's pix_size)")
    pixel = setup["pixel_size"]
    if params.in_file or params.preprocess is not None:
        log.warning("in_file and preprocess (older BayFAI) are not used: the pixel matrix comes from %s", params.h5)
    powder = np.where(powder > 0, powder, 0.0)
    imin = float(np.percentile(powder[powder > 0], params.bo_params.Imin))
    detector = Detector(pixel1=pixel, pixel2=pixel, max_shape=powder.shape)
    calibrant = get_calibrant(params.calibrant)
    calibrant.wavelength = wavelength_m(setup, params.wavelength if params.wavelength != 1e-10 else None)
    scorer = opt.Scorer(powder, detector, calibrant, imin, params.bo_params.max_rings, params.bo_params.pts_per_deg)
    dist = round(params.center["dist"] + (world.rank - world.size // 2) * params.resolutions["dist"], 6)
    mine = opt.optimize_distance(
        scorer, dist, params.center, params.bounds, params.resolutions, params.fixed, params.bo_params
    )
    log.info("rank %d: distance %.4f m, score %.4g, penalty %.4g", world.rank, dist, mine.score, mine.penalty)
    results = world.gather(mine)
    if world.rank != 0:
        return None
    final = [r.score + params.bo_params.lbda * r.penalty for r in results]
    best = results[int(np.argmax(final))]
    geometry = {**dict(zip(opt.ORDER, best.params)), "wavelength": calibrant.wavelength}
    run = int(params.lute_config.run) if str(params.lute_config.run).isdigit() else 0
    files = write_geometry(
        params.out_file,
        run,
        params.detname,
        powder.shape,
        pixel,
        geometry,
        {"score": best.score, "penalty": best.penalty, "calibrant": params.calibrant},
    )
    folder = os.path.join(params.lute_config.work_dir, "figs")
    os.makedirs(folder, exist_ok=True)
    name = f"bayFAI_summary_{params.lute_config.experiment}_r{run:04d}_{params.detname}.png"
    figure = draw(os.path.join(folder, name), powder, detector, calibrant, geometry, results)
    center = (geometry["poni2"] / pixel, geometry["poni1"] / pixel)  # upstream's (x, y) in pixels
    summary = {
        "Detector distance (m)": f"{geometry['dist']:.6f}",
        "Detector center (pix)": (f"{center[0]:.3f}", f"{center[1]:.3f}"),
        "Score": f"{best.score:.3f}",
        "Distances tried": len(results),
    }
    payload = {
        **geometry,
        "center_px": list(center),
        "score": best.score,
        "penalty": best.penalty,
        "sigma": best.sigma,
        "distances": [r.distance for r in results],
        **files,
        "figures": [figure],
    }
    return summary, payload


def draw(path: str, powder: Any, detector: Any, calibrant: Any, geometry: Dict[str, float], results: Any) -> str:
    """The powder with the calibrant's rings for the winning geometry, and the BO histories."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    ai = AzimuthalIntegrator(detector=detector, **geometry)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5))
    lo, hi = np.percentile(powder, [5, 99])
    left.imshow(powder, vmin=lo, vmax=hi, origin="lower", cmap="viridis")
    left.contour(
        ai.center_array(powder.shape, unit="2th_rad"),
        levels=sorted(calibrant.get_2th())[:10],
        colors="red",
        linewidths=0.6,
        linestyles="dashed",
    )
    left.set_title(
        f"dist {geometry['dist'] * 1e3:.2f} mm, poni ({geometry['poni1'] * 1e3:.3f}, {geometry['poni2'] * 1e3:.3f}) mm"
    )
    for result in results:
        right.plot(result.history, "o-", markersize=2, label=f"{result.distance:.4f} m")
    right.set_xlabel("evaluation")
    right.set_ylabel("score")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
