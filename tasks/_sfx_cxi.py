"""CXI files of found peaks, in upstream LUTE's layout, for CrystFEL's ``indexamajig --peaks=cxi``.

Owns one rank's file ``<outdir>/<exp>_r<run:04d>_<rank><tag>.cxi`` (``/entry_1/data_1/data``: each
hit's detector slab; ``/entry_1/result_1/nPeaks``, ``peakXPosRaw`` (fs), ``peakYPosRaw`` (ss) and
the finder's other per-peak columns, padded to ``max_peaks``; ``/LCLS/*`` per-hit time stamps,
photon energy and camera length; the hit/miss powders and the inverted mask), the master file
``<exp>_r<run:04d><tag>.cxi`` (virtual datasets over the rank files holding hits) and the ``.lst``
file naming it. numpy and h5py only, imported inside the image. Must not read events or find peaks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

PF8_KEYS = ("peakXPosRaw", "peakYPosRaw", "peakNPixels", "peakTotalIntensity", "peakMaxIntensity", "peakSNR")
PYALGOS_KEYS = (
    "peakXPosRaw", "peakYPosRaw", "rcent", "ccent", "rmin", "rmax", "cmin", "cmax",
    "peakTotalIntensity", "peakMaxIntensity", "peakRadius",
)  # fmt: skip
LCLS_KEYS = ("eventNumber", "machineTime", "machineTimeNanoSeconds", "fiducial", "photon_energy_eV")


def peak_keys(algorithm: str) -> Tuple[str, ...]:
    """Return the per-peak datasets an algorithm writes under /entry_1/result_1 (besides nPeaks)."""
    if algorithm == "Peakfinder8_v2":
        return (*PF8_KEYS, "peakPanelNumRaw")
    return PF8_KEYS if algorithm.startswith("Peakfinder8") else PYALGOS_KEYS


def rank_file(outdir: str, exp: str, run: int, rank: int, tag: str) -> str:
    """Return the path of one rank's CXI file (upstream's name)."""
    return os.path.join(outdir, f"{exp}_r{run:0>4}_{rank}{tag}.cxi")


@dataclass
class Hit:
    """One event written to the file: its slab, peaks and what LCLS knows about it."""

    image: Any
    peaks: Any
    seconds: int
    nanoseconds: int
    fiducial: int
    photon_energy: float
    clen: float


class CxiWriter:
    """One rank's CXI file; rows grow one hit at a time."""

    def __init__(self, path: str, slab_shape: Tuple[int, int], raw_shape: Tuple[int, ...], params: Any) -> None:
        import h5py
        import numpy as np

        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.path, self.algorithm, self.max_peaks = path, params.algorithm, params.max_peaks
        self.raw_rows = raw_shape[-2]
        self.index = 0
        self.h5 = h5py.File(path, "w")
        entry = self.h5.create_group("entry_1")
        entry.create_dataset("experimental_identifier", (0,), maxshape=(None,), dtype=int)
        rows, cols = slab_shape
        entry.create_dataset(
            "data_1/data", (0, rows, cols), chunks=(1, rows, cols), maxshape=(None, rows, cols), dtype=np.float32
        )
        for key in ("powderHits", "powderMisses", "mask"):
            entry.create_dataset(f"data_1/{key}", slab_shape, dtype=float)
        n_peaks = entry.create_dataset("result_1/nPeaks", (0,), maxshape=(None,), dtype=int)
        n_peaks.attrs["minPeaks"], n_peaks.attrs["maxPeaks"] = params.min_peaks, params.max_peaks
        for key in peak_keys(self.algorithm):
            shape = (0, self.max_peaks)
            entry.create_dataset(
                f"result_1/{key}", shape, maxshape=(None, self.max_peaks), chunks=(1, self.max_peaks), dtype=float
            )
        lcls = self.h5.create_group("LCLS")
        for key in LCLS_KEYS:
            lcls.create_dataset(key, (0,), maxshape=(None,), dtype=float if key == "photon_energy_eV" else int)
        lcls.create_dataset("detector_1/EncoderValue", (0,), maxshape=(None,), dtype=float)

    def _datasets(self) -> List[Any]:
        groups = (self.h5["entry_1/result_1"], self.h5["LCLS"])
        return [self.h5["entry_1/data_1/data"], *(g[k] for g in groups for k in g if k != "detector_1")]

    def write(self, hit: Hit) -> None:
        """Append one hit."""
        import numpy as np

        for dataset in (*self._datasets(), self.h5["LCLS/detector_1/EncoderValue"]):
            dataset.resize(self.index + 1, axis=0)
        i, result = self.index, self.h5["entry_1/result_1"]
        self.h5["entry_1/data_1/data"][i] = hit.image
        if isinstance(hit.peaks, dict):  # peakfinder8: lists per quantity
            n = len(hit.peaks["fs"])
            columns = {
                "peakXPosRaw": hit.peaks["fs"], "peakYPosRaw": hit.peaks["ss"], "peakNPixels": hit.peaks["num_pixels"],
                "peakTotalIntensity": hit.peaks["intensity"], "peakMaxIntensity": hit.peaks["max_pixel_intensity"],
                "peakSNR": hit.peaks["snr"], "peakPanelNumRaw": hit.peaks.get("panel_number", []),
            }  # fmt: skip
        else:  # psalg/PyAlgos rows: integer positions in the slab, as upstream writes them
            peaks, n = hit.peaks, int(hit.peaks.shape[0])
            slab_row = peaks[:, 0] * self.raw_rows + peaks[:, 1]
            centre = [size / 2 for size in self.h5["entry_1/data_1/data"].shape[1:]]
            columns = {
                "peakXPosRaw": peaks[:, 2].astype(int), "peakYPosRaw": slab_row.astype(int),
                "rcent": peaks[:, 6], "ccent": peaks[:, 7], "rmin": peaks[:, 10], "rmax": peaks[:, 11],
                "cmin": peaks[:, 12], "cmax": peaks[:, 13], "peakTotalIntensity": peaks[:, 5],
                "peakMaxIntensity": peaks[:, 4],
                # Without psana's pixel coordinates: the distance from the slab's centre, in pixels.
                "peakRadius": np.hypot(slab_row - centre[0], peaks[:, 2] - centre[1]),
            }  # fmt: skip
        result["nPeaks"][i] = n
        for key in peak_keys(self.algorithm):
            if n:
                result[key][i, :n] = np.asarray(columns[key], dtype=np.float32)[:n]
        lcls = self.h5["LCLS"]
        lcls["eventNumber"][i] = i
        lcls["machineTime"][i], lcls["machineTimeNanoSeconds"][i] = hit.seconds, hit.nanoseconds
        lcls["fiducial"][i], lcls["photon_energy_eV"][i] = hit.fiducial, hit.photon_energy
        lcls["detector_1/EncoderValue"][i] = hit.clen
        self.index += 1

    def close(self, powder_hits: Any, powder_misses: Any, mask: Any) -> int:
        """Write the powders and the mask (CrystFEL wants 1 = bad), close; return the hits written."""
        data = self.h5["entry_1/data_1"]
        data["powderHits"][:], data["powderMisses"][:] = powder_hits, powder_misses
        data["mask"][:] = (1 - mask).reshape(data["mask"].shape)
        self.h5.close()
        return self.index


def write_master(outdir: str, exp: str, run: int, tag: str, hits_per_rank: Sequence[int]) -> str:
    """Write the master CXI file: virtual datasets over every rank file with hits; return its path."""
    import h5py
    import numpy as np

    outdir = os.path.abspath(outdir)  # absolute sources, as upstream: the master is read from anywhere
    files = [(rank_file(outdir, exp, run, rank, tag), n) for rank, n in enumerate(hits_per_rank) if n > 0]
    if not files:
        raise RuntimeError("no hits found: no CXI file to index (lower min_peaks or the thresholds?)")
    total = sum(n for _, n in files)
    layouts: Dict[str, Tuple[Tuple[int, ...], Any]] = {}
    with h5py.File(files[0][0], "r") as first:
        for group in ("entry_1/result_1", "LCLS/detector_1", "LCLS", "entry_1/data_1"):
            for key, item in first[group].items():
                if isinstance(item, h5py.Dataset) and key not in ("mask", "powderHits", "powderMisses"):
                    layouts[f"{group}/{key}"] = (item.shape[1:], item.dtype)
        mask = first["entry_1/data_1/mask"][()]
    hits = misses = None
    for path, _ in files:
        with h5py.File(path, "r") as part:
            h, m = part["entry_1/data_1/powderHits"][()], part["entry_1/data_1/powderMisses"][()]
        hits, misses = (h, m) if hits is None else (np.maximum(hits, h), np.maximum(misses, m))
    master = os.path.join(outdir, f"{exp}_r{run:0>4}{tag}.cxi")
    with h5py.File(master, "w") as out:
        for name, (tail, dtype) in layouts.items():
            layout = h5py.VirtualLayout(shape=(total, *tail), dtype=dtype)
            cursor = 0
            for path, n in files:
                layout[cursor : cursor + n] = h5py.VirtualSource(path, name, shape=(n, *tail))
                cursor += n
            out.create_virtual_dataset(name, layout, fillvalue=-1)
        out["entry_1/data_1/powderHits"], out["entry_1/data_1/powderMisses"] = hits, misses
        out["entry_1/data_1/mask"] = mask
    return master
