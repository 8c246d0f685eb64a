"""XTC2 runs with known physics for the small-data and geometry Tasks, written with psana's own DgramEdit.

Run inside the psana2 image (psana, pyFAI): ``python3 smd_runs.py OUT_DIR [--events-per-step N]``.
Writes ``<exp>-r<run:04d>-s000-c000.xtc2`` (and, with ``--index``, psana's smalldata/ index via
``smdwriter``) for three runs of ``xppl1001021`` and ``truth.json``, what was injected:

* run 20, a time scan (``scan/lxt``): ``epix10k2M`` sees water scattering (pyFAI geometry, I0
  scaled) and, laser on after t0, an extra ring at ``ring_q``; ``epix_2`` is an emission
  spectrometer whose line moves by ``xes_shift`` rows after t0. X-ray-off and low-I0 shots are mixed
  in (``timing`` event codes 137/89, ``ipm_dg2/sum``).
* run 21, an energy scan (``scan/ccm_E_setpoint``, EPICS ``ccm_E`` readback in SlowUpdates):
  ``epix_1`` sees fluorescence of an absorption edge at ``edge_eV`` (``edge_shift`` higher with the
  laser on).
* run 30, silver behenate: ``Rayonix`` sees pyFAI's AgBh calibrant for a known geometry.

Everything is seeded: the same command writes the same bytes. Test data only: never imported by the kernel.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from typing import Any, Dict, List

import numpy as np
from psana.psexp import TransitionId
from xtc2_writer import Writer, timing_values

EXPERIMENT = "xppl1001021"
TRUTH: Dict[str, Any] = {
    "experiment": EXPERIMENT,
    "xss": {
        "run": 20,
        "ring_q": 2.4,
        "ring_sigma": 0.08,
        "ring_amplitude": 0.04,
        "t0": 0.2e-12,
        "rise": 0.15e-12,
        "lxt": [-1.5e-12, -1.0e-12, -0.5e-12, 0.0, 0.5e-12, 1.0e-12, 1.5e-12, 2.0e-12],
        "pixel": 300e-6,
        "shape": [200, 200],
        "dist": 0.05,
        "center": [100.3, 99.6],
        "photon_energy": 12398.4198,
    },
    "xes": {"line_row": 22.0, "satellite_row": 16.0, "xes_shift": 1.0, "spatial_col": 14.0, "shape": [60, 30]},
    "xas": {
        "run": 21,
        "edge_eV": 7112.0,
        "edge_width": 1.0,
        "edge_shift": 1.0,
        "readback_offset": 0.02,
        "energies": [7100.0 + i for i in range(25)],
        "shape": [40, 40],
    },
    "agbh": {
        "run": 30,
        "pixel": 100e-6,
        "shape": [256, 256],
        "dist": 0.1,
        "center": [124.7, 131.3],
        "photon_energy": 9500.0,
        "guess_dist": 0.097,
        "events": 6,
    },
}


COMMON = {
    "timing": ("ts", "raw", (2, 1, 0), {"sequenceValues": (np.uint16, 1), "ebeamDestn": (np.uint8, 0)}),
    "ipm_dg2": ("bmmon", "raw", (1, 0, 0), {"sum": (np.float64, 0)}),
    "ebeam": ("ebeam", "raw", (2, 0, 0), {"ebeamPhotonEnergy": (np.float64, 0)}),
    "epix10k2M": ("cspad", "raw", (2, 3, 42), {"arrayRaw": (np.float32, 2)}),
}


def water_image(rng: Any, q_map: Any, i0: float, ring: float) -> Any:
    """Liquid water scattering (plus the injected ring, scaled 0..1) for one shot of intensity ``i0``."""
    cfg = TRUTH["xss"]
    s_q = np.exp(-0.5 * ((q_map - 2.0) / 0.45) ** 2) + 0.3 * np.exp(-q_map / 1.5) + 0.1
    s_q = s_q + ring * cfg["ring_amplitude"] * np.exp(-0.5 * ((q_map - cfg["ring_q"]) / cfg["ring_sigma"]) ** 2)
    image = 0.5 * i0 * s_q
    return (image + rng.normal(0.0, 0.01 * image.mean() + 0.5, image.shape)).astype(np.float32)


def shot_pattern(i: int, rng: Any) -> Dict[str, Any]:
    """X-rays off every 10th shot, low I0 every 13th, the laser on every other shot."""
    xray = i % 10 != 9
    i0 = float(rng.uniform(800.0, 1500.0)) if xray else float(rng.uniform(0.0, 5.0))
    if xray and i % 13 == 5:
        i0 = float(rng.uniform(150.0, 300.0))
    return {"xray": xray, "laser": i % 2 == 0, "i0": i0}


def q_map_of(cfg: Dict[str, Any]) -> Any:
    """|q| (1/Angstrom) at every pixel of a flat detector with the run's pyFAI geometry."""
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    pixel, (rows, cols), (cy, cx) = cfg["pixel"], cfg["shape"], cfg["center"]
    ai = AzimuthalIntegrator(
        dist=cfg["dist"],
        poni1=(cy + 0.5) * pixel,
        poni2=(cx + 0.5) * pixel,
        detector=Detector(pixel1=pixel, pixel2=pixel, max_shape=(rows, cols)),
        wavelength=1.23984198e-6 / cfg["photon_energy"],
    )
    return ai, ai.array_from_unit((rows, cols), "center", "q_A^-1")


def write_time_scan(path: str, per_step: int) -> None:
    """Run 20: XSS ring and XES line shift after t0, over the lxt scan."""
    cfg, xes = TRUTH["xss"], TRUTH["xes"]
    dets = {
        **COMMON,
        "epix_2": ("cspad", "raw", (2, 3, 42), {"arrayRaw": (np.float32, 2)}),
        "scan": ("scan", "raw", (2, 0, 0), {"lxt": (np.float64, 0)}),
    }
    writer = Writer(path, dets, EXPERIMENT, cfg["run"])
    rng = np.random.default_rng(20)
    _, q_map = q_map_of(cfg)
    rows, cols = np.mgrid[0 : xes["shape"][0], 0 : xes["shape"][1]]
    spatial = np.exp(-0.5 * ((cols - xes["spatial_col"]) / 2.5) ** 2)
    shot = 0
    for lxt in cfg["lxt"]:
        writer.transition(TransitionId.BeginStep, [writer.fill("scan", lxt=float(lxt))])
        writer.transition(TransitionId.Enable)
        pumped = 0.5 * (1.0 + math.erf((lxt - cfg["t0"]) / (math.sqrt(2.0) * cfg["rise"])))
        for _ in range(per_step):
            s = shot_pattern(shot, rng)
            on = s["laser"] and s["xray"]
            image = (
                water_image(rng, q_map, s["i0"], pumped if on else 0.0)
                if s["xray"]
                else rng.normal(0.0, 0.5, q_map.shape).astype(np.float32)
            )
            line = xes["line_row"] + (xes["xes_shift"] * pumped if on else 0.0)
            spectrum = 100.0 * np.exp(-0.5 * ((rows - line) / 1.5) ** 2) + 15.0 * np.exp(
                -0.5 * ((rows - xes["satellite_row"]) / 2.0) ** 2
            )
            emission = (s["i0"] / 1000.0) * spectrum * spatial + rng.normal(0.0, 0.3, spatial.shape)
            writer.transition(
                TransitionId.L1Accept,
                [
                    writer.fill("timing", **timing_values(s["xray"], s["laser"])),
                    writer.fill("ipm_dg2", sum=s["i0"]),
                    writer.fill("ebeam", ebeamPhotonEnergy=cfg["photon_energy"]),
                    writer.fill("epix10k2M", arrayRaw=image),
                    writer.fill("epix_2", arrayRaw=emission.astype(np.float32)),
                ],
            )
            shot += 1
        writer.transition(TransitionId.Disable)
        writer.transition(TransitionId.EndStep)
    writer.close()


def write_energy_scan(path: str, per_step: int) -> None:
    """Run 21: an absorption edge in epix_1's fluorescence over the CCM energy scan."""
    cfg, xss = TRUTH["xas"], TRUTH["xss"]
    dets = {
        **COMMON,
        "epix_1": ("cspad", "raw", (2, 3, 42), {"arrayRaw": (np.float32, 2)}),
        "scan": ("scan", "raw", (2, 0, 0), {"ccm_E_setpoint": (np.float64, 0)}),
        "epics": ("epics", "raw", (2, 0, 0), {"ccm_E": (np.float64, 0)}),
    }
    writer = Writer(path, dets, EXPERIMENT, cfg["run"])
    rng = np.random.default_rng(21)
    _, q_map = q_map_of(xss)
    shot = 0
    for energy in cfg["energies"]:
        writer.transition(TransitionId.BeginStep, [writer.fill("scan", ccm_E_setpoint=float(energy))])
        writer.transition(TransitionId.Enable)
        writer.transition(TransitionId.SlowUpdate, [writer.fill("epics", ccm_E=float(energy + cfg["readback_offset"]))])
        for _ in range(per_step):
            s = shot_pattern(shot, rng)
            edge = cfg["edge_eV"] + (cfg["edge_shift"] if s["laser"] else 0.0)
            mu = 1.0 + 0.8 * (0.5 + math.atan((energy - edge) / cfg["edge_width"]) / math.pi)
            image = (
                water_image(rng, q_map, s["i0"], 0.0)
                if s["xray"]
                else rng.normal(0.0, 0.5, q_map.shape).astype(np.float32)
            )
            fluo = np.full(cfg["shape"], (s["i0"] / 1000.0) * mu) + rng.normal(0.0, 0.02, cfg["shape"])
            writer.transition(
                TransitionId.L1Accept,
                [
                    writer.fill("timing", **timing_values(s["xray"], s["laser"])),
                    writer.fill("ipm_dg2", sum=s["i0"]),
                    writer.fill("ebeam", ebeamPhotonEnergy=xss["photon_energy"]),
                    writer.fill("epix10k2M", arrayRaw=image),
                    writer.fill("epix_1", arrayRaw=fluo.astype(np.float32)),
                ],
            )
            shot += 1
        writer.transition(TransitionId.Disable)
        writer.transition(TransitionId.EndStep)
    writer.close()


def write_agbh(path: str) -> None:
    """Run 30: a silver behenate powder from pyFAI's calibrant, for the true geometry."""
    from pyFAI.calibrant import get_calibrant

    cfg = TRUTH["agbh"]
    ai, _ = q_map_of(cfg)
    calibrant = get_calibrant("AgBh")
    calibrant.wavelength = ai.wavelength
    powder = calibrant.fake_calibration_image(ai, shape=tuple(cfg["shape"]), Imax=1000.0, resolution=0.05)
    dets = {"ebeam": COMMON["ebeam"], "Rayonix": ("cspad", "raw", (2, 3, 42), {"arrayRaw": (np.float32, 2)})}
    writer = Writer(path, dets, EXPERIMENT, cfg["run"])
    rng = np.random.default_rng(30)
    writer.transition(TransitionId.BeginStep)
    writer.transition(TransitionId.Enable)
    for _ in range(cfg["events"]):
        image = powder + 20.0 + rng.normal(0.0, 2.0, powder.shape)
        writer.transition(
            TransitionId.L1Accept,
            [
                writer.fill("ebeam", ebeamPhotonEnergy=cfg["photon_energy"]),
                writer.fill("Rayonix", arrayRaw=image.astype(np.float32)),
            ],
        )
    writer.transition(TransitionId.Disable)
    writer.transition(TransitionId.EndStep)
    writer.close()


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--events-per-step", type=int, default=16)
    parser.add_argument("--index", action="store_true", help="also write the smalldata/ index (for MPI runs)")
    args = parser.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    name = os.path.join(args.out_dir, f"{EXPERIMENT}-r{{:04d}}-s000-c000.xtc2").format
    write_time_scan(name(TRUTH["xss"]["run"]), args.events_per_step)
    write_energy_scan(name(TRUTH["xas"]["run"]), max(args.events_per_step // 2, 4))
    write_agbh(name(TRUTH["agbh"]["run"]))
    if args.index:
        os.makedirs(os.path.join(args.out_dir, "smalldata"), exist_ok=True)
        for run in (TRUTH["xss"]["run"], TRUTH["xas"]["run"], TRUTH["agbh"]["run"]):
            data = name(run)
            index = os.path.join(args.out_dir, "smalldata", os.path.basename(data).replace(".xtc2", ".smd.xtc2"))
            subprocess.run(["smdwriter", "-f", data, "-o", index], check=True, capture_output=True)
    TRUTH["xss"]["events_per_step"] = args.events_per_step
    with open(os.path.join(args.out_dir, "truth.json"), "w") as handle:
        json.dump(TRUTH, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
