"""What the geometry Tasks read from a small-data file and what they write: powder, pixel, wavelength, geometry.

Owns the files of ``OptimizeAgBhGeometryExhaustive`` and ``BayFAI``: the powder image
(smalldata_tools' ``Sums/<det>_calib_max`` or ``Sums/<det>_calib``, assembled with
``UserDataCfg/<det>/ix``/``iy`` when the detector has several segments, or a ``.npy`` file), the
pixel size and starting geometry the producer recorded (``UserDataCfg/<det>/pixel_size``,
``pyfai__azcfg_*``), the photon energy (``ebeamh/ebeamPhotonEnergy``, ``ebeam/ebeamPhotonEnergy``,
``ebeam/photon_energy``, as upstream's BayFAI) and the geometry written back: a pyFAI ``.poni``, a
psana geometry ``.data`` of one pixel matrix, and a JSON record. Runs in the psana2 image.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np

PHOTON_ENERGY_KEYS = ("ebeamh/ebeamPhotonEnergy", "ebeam/ebeamPhotonEnergy", "ebeam/photon_energy")
HC_EV_M = 1.23984198e-6


def _assemble(h5: Any, det: str, unassembled: Any) -> Any:
    squeezed = np.squeeze(unassembled)
    if squeezed.ndim == 2:
        return squeezed
    ix = np.asarray(h5[f"UserDataCfg/{det}/ix"][()], dtype=np.int64)
    iy = np.asarray(h5[f"UserDataCfg/{det}/iy"][()], dtype=np.int64)
    if ix.size != unassembled.size or iy.size != unassembled.size:
        raise ValueError(f"{det}: image and pixel index shapes differ ({unassembled.shape}, {ix.shape}, {iy.shape})")
    ix, iy = ix - ix.min(), iy - iy.min()
    image = np.zeros((int(ix.max()) + 1, int(iy.max()) + 1))
    np.add.at(image, (ix.ravel(), iy.ravel()), np.asarray(unassembled, dtype=np.float64).ravel())
    return image


def read_powder(path: str, det: str, prefer_max: bool) -> Any:
    """The powder image of ``det``: a .npy file, or the run sums of a small-data file."""
    if path.endswith(".npy"):
        return np.asarray(np.load(path), dtype=np.float64)
    import h5py

    keys = [f"Sums/{det}_calib_max", f"Sums/{det}_calib"] if prefer_max else [f"Sums/{det}_calib"]
    with h5py.File(path, "r") as h5:
        for key in keys:
            if key in h5:
                return np.asarray(_assemble(h5, det, h5[key][()]), dtype=np.float64)
    raise KeyError(f"no powder of {det} in {path} (looked for {', '.join(keys)})")


def read_mask(path: Optional[str], det: str, powder_path: str) -> Optional[Any]:
    """A detector mask (1: good pixel): a .npy file, or ``UserDataCfg/<det>/mask`` of a small-data file."""
    if not path:
        return None
    if path.endswith(".npy"):
        return np.asarray(np.load(path))
    import h5py

    with h5py.File(path or powder_path, "r") as h5:
        return np.asarray(_assemble(h5, det, h5[f"UserDataCfg/{det}/mask"][()]))


def recorded_setup(path: str, det: str) -> Dict[str, float]:
    """What the producer recorded about ``det`` (pixel size, pyFAI geometry; meters) and the mean photon energy (eV)."""
    if path.endswith(".npy"):
        return {}
    import h5py

    found: Dict[str, float] = {}
    with h5py.File(path, "r") as h5:
        group = h5.get(f"UserDataCfg/{det}")
        for name in group.keys() if group is not None else ():
            if name == "pixel_size" or name.startswith("pyfai__azcfg_"):
                found[name.replace("pyfai__azcfg_", "")] = float(group[name][()])
        for key in PHOTON_ENERGY_KEYS:
            if key in h5:
                energies = np.asarray(h5[key][()], dtype=float)
                energies = energies[np.isfinite(energies) & (energies > 0)]
                if energies.size:
                    found["photon_energy"] = float(np.mean(energies))
                    break
    return found


def wavelength_m(setup: Dict[str, float], given: Optional[float] = None) -> float:
    """The X-ray wavelength in meters: given, else from the photon energy, else the producer's."""
    if given:
        return given
    if "photon_energy" in setup:
        return HC_EV_M / setup["photon_energy"]
    if "wavelength" in setup:
        return setup["wavelength"]
    raise ValueError("no photon energy (ebeam/ebeamPhotonEnergy) in the file: give the wavelength")


def _write_poni(path: str, shape: Tuple[int, int], pixel: float, geometry: Dict[str, float]) -> None:
    from pyFAI.detectors import Detector
    from pyFAI.geometry import Geometry

    detector = Detector(pixel1=pixel, pixel2=pixel, max_shape=shape)
    keys = ("dist", "poni1", "poni2", "rot1", "rot2", "rot3", "wavelength")
    if os.path.exists(path):
        os.unlink(path)  # pyFAI appends to an existing file
    Geometry(detector=detector, **{k: geometry[k] for k in keys}).save(path)


def write_geometry(
    out_file: str,
    run: int,
    det: str,
    shape: Tuple[int, int],
    pixel: float,
    geometry: Dict[str, float],
    extra: Dict[str, Any],
    stem: Optional[str] = None,
) -> Dict[str, str]:
    """Write ``out_file`` (psana geometry), ``<stem>.poni`` and ``<stem>_geometry.json`` beside it.

    ``stem`` defaults to ``r<run:04d>`` (upstream BayFAI's poni name).

    ``geometry`` is pyFAI's (dist, poni1, poni2, rot1, rot2, rot3 in m and rad, wavelength in m). The
    psana file places one ``MTRX:V2`` pixel matrix so that the beam (the PONI) is at x = y = 0.
    """
    folder = os.path.dirname(out_file) or "."
    os.makedirs(folder, exist_ok=True)
    stem = stem or f"r{run:04d}"
    poni = os.path.join(folder, f"{stem}.poni")
    record = os.path.join(folder, f"{stem}_geometry.json")
    _write_poni(poni, shape, pixel, geometry)
    um = 1e6
    x0 = (shape[1] / 2.0 * pixel - geometry["poni2"]) * um  # matrix centre relative to the beam
    y0 = (geometry["poni1"] - shape[0] / 2.0 * pixel) * um
    tilt = [np.degrees(geometry[k]) for k in ("rot3", "rot2", "rot1")]
    with open(out_file, "w") as handle:
        handle.write(f"# psana geometry of {det}, run {run}: written by lute-kernel from a fitted pyFAI geometry\n")
        handle.write("# PARENT IND OBJECT IND X0[um] Y0[um] Z0[um] ROT-Z ROT-Y ROT-X TILT-Z TILT-Y TILT-X\n")
        segment = f"MTRX:V2:{shape[0]}:{shape[1]}:{pixel * um:g}:{pixel * um:g}"
        handle.write(
            f"IP 0 {segment} 0 {x0:.2f} {y0:.2f} {geometry['dist'] * um:.2f} 0 0 0 "
            f"{tilt[0]:.5f} {tilt[1]:.5f} {tilt[2]:.5f}\n"
        )
    with open(record, "w") as handle:
        json.dump(
            {"detector": det, "run": run, "shape": list(shape), "pixel_size": pixel, **geometry, **extra},
            handle,
            indent=1,
            default=float,
        )
    return {"geometry_file": out_file, "poni_file": poni, "geometry_json": record}
