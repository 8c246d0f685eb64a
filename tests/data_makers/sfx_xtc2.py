"""Write an XTC2 run with a real-size area detector holding Bragg-like spots at known positions.

Runs inside the psana2 image (or any Python with psana 4.3): psana's own ``xtcwriter`` writes a
small run, ``DgramEdit`` adds a multi-panel detector of type ``cspad`` (``raw`` algorithm, one
``segment`` per panel) to its Configure and fills every L1Accept with a noisy background plus
Gaussian spots, and ``smdwriter`` writes the run's small-data index. The truth (every spot's panel,
row, column and intensity per event, in timestamp order) goes to ``truth.json``; a CrystFEL
geometry file of the same detector (panels stacked along the slow-scan axis, as in a CXI file)
goes to ``<detector>.geom``. Nothing here is a Task: tests call it to make data they then check.

Usage: python3 sfx_xtc2.py OUT_DIR [--experiment E] [--run N] [--events N] [--seed S] ...
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from typing import Any, Dict, List, Tuple

import numpy as np

BUF = 64_000_000
HOT_PIXELS = 25  # per event


def tool(name: str) -> str:
    """Return psana's own binary (the wheel keeps them in site-packages/bin)."""
    import psana

    beside = os.path.join(os.path.dirname(os.path.dirname(psana.__file__)), "bin", name)
    return beside if os.path.exists(beside) else name


def spot_pixels(row: float, col: float, total: float, sigma: float) -> Tuple[np.ndarray, int, int]:
    """Return a Gaussian spot integrated over pixels (an 11x11 patch) and the patch's top-left pixel."""
    r0, c0 = math.floor(row) - 5, math.floor(col) - 5
    edges_r = np.arange(r0, r0 + 12) - row
    edges_c = np.arange(c0, c0 + 12) - col
    erf = np.vectorize(math.erf)
    cdf_r = 0.5 * (1 + erf(edges_r / (sigma * math.sqrt(2))))
    cdf_c = 0.5 * (1 + erf(edges_c / (sigma * math.sqrt(2))))
    patch = np.outer(np.diff(cdf_r), np.diff(cdf_c)) * total
    return patch, r0, c0


MIN_INTENSITY = 600.0  # the weakest spots peak near the finders' 100 ADU threshold (sigma 1 px)


def place_spots(rng: np.random.Generator, count: int, panels: int, rows: int, cols: int) -> List[List[float]]:
    """Return ``count`` spots [panel, row, col, intensity], away from edges and from each other."""
    spots: List[List[float]] = []
    while len(spots) < count:
        panel = int(rng.integers(panels))
        row, col = rng.uniform(10, rows - 10), rng.uniform(10, cols - 10)
        if all(p != panel or math.hypot(r - row, c - col) > 14 for p, r, c, _ in spots):
            spots.append([panel, round(row, 3), round(col, 3), round(float(rng.uniform(MIN_INTENSITY, 5000)), 1)])
    return spots


def frame(rng: np.random.Generator, spots: List[List[float]], shape: Tuple[int, int, int], sigma: float) -> np.ndarray:
    """Return one event's detector array: background + noise + hot pixels + spots, float32 ADU.

    Hot pixels (single bright pixels, not in the truth) are what a finder's minimum peak size must
    reject: they test precision.
    """
    data = rng.normal(20.0, 4.0, size=shape).astype(np.float32)
    hot = rng.integers(0, [shape[0], shape[1], shape[2]], size=(HOT_PIXELS, 3))
    data[hot[:, 0], hot[:, 1], hot[:, 2]] = 3000.0
    for panel, row, col, intensity in spots:
        patch, r0, c0 = spot_pixels(row, col, intensity, sigma)
        data[int(panel), r0 : r0 + patch.shape[0], c0 : c0 + patch.shape[1]] += patch.astype(np.float32)
    return data


def geometry_text(panels: int, rows: int, cols: int, gap: int = 4) -> str:
    """Return a CrystFEL geometry file: panels in a 2-column grid around the beam, stacked in ss."""
    lines = [
        "; Synthetic detector written by tests/data_makers/sfx_xtc2.py",
        "clen = 0.1",
        "res = 13333.3",
        "photon_energy = 9500",
        "adu_per_photon = 1",
        "data = /entry_1/data_1/data",
        "dim0 = %",
        "dim1 = ss",
        "dim2 = fs",
        "peak_list = /entry_1/result_1",
        "peak_list_type = cxi",
        "",
    ]
    grid_rows = (panels + 1) // 2
    for p in range(panels):
        gx, gy = p % 2, p // 2
        corner_x = -cols - gap if gx == 0 else gap
        corner_y = (gy - grid_rows / 2) * (rows + 2 * gap) + gap
        lines += [
            f"p{p}/min_fs = 0",
            f"p{p}/max_fs = {cols - 1}",
            f"p{p}/min_ss = {p * rows}",
            f"p{p}/max_ss = {p * rows + rows - 1}",
            f"p{p}/fs = +1.0x",
            f"p{p}/ss = +1.0y",
            f"p{p}/corner_x = {corner_x:g}",
            f"p{p}/corner_y = {corner_y:g}",
            "",
        ]
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--experiment", default="xpptut15")
    parser.add_argument("--run", type=int, default=14)
    parser.add_argument("--events", type=int, default=12)
    parser.add_argument("--detector", default="jungfrau")
    parser.add_argument("--panels", type=int, default=4)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--cols", type=int, default=512)
    parser.add_argument("--spots", type=int, default=40, help="spots per hit")
    parser.add_argument("--miss-every", type=int, default=4, help="every Nth event is a miss (3 spots)")
    parser.add_argument("--sigma", type=float, default=1.0, help="spot width in pixels")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from psana import DataSource, dgram
    from psana.dgramedit import AlgDef, DetectorDef, DgramEdit

    xtc_dir = os.path.join(args.out_dir, "xtc")
    os.makedirs(os.path.join(xtc_dir, "smalldata"), exist_ok=True)
    name = f"{args.experiment}-r{args.run:04d}-s000-c000"
    base = os.path.join(args.out_dir, "xtcwriter.xtc2")
    subprocess.run([tool("xtcwriter"), "-f", base, "-n", str(args.events)], check=True, stdout=subprocess.DEVNULL)
    run = next(DataSource(files=[base], skip_calib_load="all").runs())

    out_path = os.path.join(xtc_dir, f"{name}.xtc2")
    out_buf, config_buf, event_buf = bytearray(BUF), bytearray(BUF), bytearray(BUF)
    config_buf[: run.configs[0]._size] = run.configs[0]
    config = DgramEdit(dgram.Dgram(view=memoryview(config_buf), offset=0), bufsize=BUF)
    detdef = DetectorDef(args.detector, "cspad", "lute-kernel-test-detector")
    segments = [
        config.Detector(detdef, AlgDef("raw", 2, 3, 42), {"arrayRaw": (np.float32, 2)}, segment=seg)
        for seg in range(args.panels)
    ]
    rng = np.random.default_rng(args.seed)
    shape = (args.panels, args.rows, args.cols)
    truth: List[Dict[str, Any]] = []
    with open(out_path, "wb") as out:
        config.save(out_buf)
        out.write(out_buf[: config.size])
        begin_run = run._evt._dgrams[0]
        edit = DgramEdit(begin_run, config_dgramedit=config, bufsize=begin_run._size)
        edit.save(out_buf)
        out.write(out_buf[: edit.size])
        for i, evt in enumerate(run.events()):
            count = 3 if args.miss_every and i % args.miss_every == args.miss_every - 1 else args.spots
            spots = place_spots(rng, count, *shape)
            data = frame(rng, spots, shape, args.sigma)
            event_buf[: evt._dgrams[0]._size] = evt._dgrams[0]
            editable = dgram.Dgram(config=run.configs[0], view=memoryview(event_buf), offset=0)
            edit = DgramEdit(editable, config_dgramedit=config, bufsize=BUF)
            for seg, det in enumerate(segments):
                det.raw.arrayRaw = np.ascontiguousarray(data[seg])
                edit.adddata(det.raw)
            edit.save(out_buf)
            out.write(out_buf[: edit.size])
            truth.append({"timestamp": int(evt.timestamp), "spots": spots})
    os.unlink(base)
    index = os.path.join(xtc_dir, "smalldata", f"{name}.smd.xtc2")
    subprocess.run([tool("smdwriter"), "-f", out_path, "-o", index], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(args.out_dir, f"{args.detector}.geom"), "w") as geom:
        geom.write(geometry_text(args.panels, args.rows, args.cols))
    with open(os.path.join(args.out_dir, "truth.json"), "w") as handle:
        json.dump({"detector": args.detector, "shape": list(shape), "events": truth}, handle)
    print(json.dumps({"xtc": out_path, "events": len(truth), "spots": sum(len(e["spots"]) for e in truth)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
