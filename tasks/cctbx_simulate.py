"""SimulateStills: serial-crystallography test data with a known answer, made by cctbx itself.

A first-party Task of the ``cctbx`` image: still diffraction images of a small known structure
(rubredoxin, PDB 1BRF, which ships in python3-cctbx) in random orientations, written as CBF files
that DIALS reads (``FormatCBFFullStill``), plus the model's intensities as an MTZ file. Its payload
records what later Tasks of the same run need, read from the DB: the images' glob, the space group
and unit cell (IndexCCTBXXFEL's known symmetry), the truth MTZ (MergeCCTBXXFEL's CC reference), and
each image's orientation. The physics lives in ``_cctbx_stills.py``; cctbx and numpy are imported
in ``run()`` only, so the host validates the parameters without them.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional

from pydantic import PositiveFloat, PositiveInt, ValidationInfo, field_validator

from lute_kernel.parameters import TaskParameters, on_worker, param
from lute_kernel.task import Task

RUBREDOXIN = "mmtbx/regression/pdbs/Fe_1brf_snip_reduced.pdb"
"""The model: rubredoxin (P 21 21 21, 34.1 34.9 43.7 Å), a file of the python3-cctbx package."""


class SimulateStills(Task):
    """Simulates still diffraction images of a known crystal (rubredoxin) with their truth."""

    image = "cctbx"

    class Parameters(TaskParameters):
        """Parameters of ``SimulateStills``."""

        n_images: PositiveInt = param(50, "Number of stills (merging needs 50 or more).")
        seed: int = param(1, "Seed of the orientations and the noise: the same seed gives the same images.")
        pdb_file: str = param("", f"Model (PDB). Default: rubredoxin, {RUBREDOXIN} of the image's python3-cctbx.")
        wavelength: PositiveFloat = param(1.3, "X-ray wavelength (Å).")
        detector_distance: PositiveFloat = param(100.0, "Sample-to-detector distance (mm).")
        pixel_size: PositiveFloat = param(0.075, "Pixel size (mm).")
        image_size: PositiveInt = param(2048, "Pixels per side of the square detector (beam at its centre).", ge=64)
        d_min: PositiveFloat = param(1.6, "Resolution limit of the model's reflections (Å).")
        excitation_sigma: PositiveFloat = param(
            0.0008, "Width (1/Å) of the partiality profile around the Ewald sphere (mosaicity, bandwidth)."
        )
        spot_sigma: PositiveFloat = param(1.0, "Spot width (pixels).")
        mean_spot_photons: PositiveFloat = param(
            1000.0, "Photons of a fully recorded reflection of the model's mean intensity."
        )
        background: float = param(8.0, "Background photons per pixel.", ge=0)
        out_dir: str = param("", "Output folder (relative: under work_dir). Default: <work_dir>/stills_r<run>.")
        prefix: str = param("still", "File names: <prefix>_00000.cbf, …, <prefix>_truth.mtz.")

        @field_validator("out_dir")
        @classmethod
        def _under_work_dir(cls, out_dir: str, info: ValidationInfo) -> str:
            header = info.data.get("lute_config")
            if header is None or on_worker(info):
                return out_dir
            if not out_dir:
                run = f"{header.run:04d}" if isinstance(header.run, int) else str(header.run or "0")
                out_dir = f"stills_r{run}"
            return os.path.join(header.work_dir, out_dir)

        @field_validator("prefix")
        @classmethod
        def _plain_name(cls, prefix: str) -> str:
            if not prefix or "/" in prefix or prefix.startswith("."):
                raise ValueError("prefix is a plain file-name start (no '/', not empty, no leading '.')")
            return prefix

    def run(self) -> None:
        """Write ``n_images`` stills and the truth MTZ; record their symmetry and orientations."""
        import numpy as np

        from . import _cctbx_stills as stills

        params = self.params
        assert isinstance(params, SimulateStills.Parameters)
        setup = stills.Setup(
            wavelength=params.wavelength,
            distance=params.detector_distance,
            pixel_size=params.pixel_size,
            image_size=params.image_size,
            d_min=params.d_min,
            excitation_sigma=params.excitation_sigma,
            spot_sigma=params.spot_sigma,
            mean_spot_photons=params.mean_spot_photons,
            background=params.background,
        )
        model_file = params.pdb_file or _packaged_model()
        model = stills.load_model(model_file, setup.d_min)
        beam, detector = stills.experiment_models(setup)
        rotations = stills.random_rotations(params.n_images, params.seed)
        rng = np.random.default_rng(params.seed)
        os.makedirs(params.out_dir, exist_ok=True)
        start, spot_counts = time.monotonic(), []
        for index, rotation in enumerate(rotations):
            crystal = stills.crystal_model(model, rotation)
            found = stills.spots(model, setup, crystal.get_A(), beam, detector[0])
            image = stills.render(found, setup, rng)
            stills.write_cbf(os.path.join(params.out_dir, f"{params.prefix}_{index:05d}.cbf"), image, beam, detector)
            spot_counts.append(len(found["x"]))
            self.progress(index + 1, params.n_images, f"still {index}: {len(found['x'])} reflections")
        truth = os.path.join(params.out_dir, f"{params.prefix}_truth.mtz")
        stills.write_truth_mtz(model, truth)
        seconds = time.monotonic() - start
        self.result.summary = {
            "images": params.n_images,
            "space_group": model.space_group,
            "unit_cell": " ".join(f"{x:g}" for x in model.unit_cell),
            "mean_reflections_per_image": round(float(np.mean(spot_counts)), 1),
            "seconds_per_image": round(seconds / params.n_images, 2),
        }
        self.result.payload = _payload(params, model, model_file, truth, rotations)


def _packaged_model() -> str:
    import mmtbx  # the python3-cctbx package ships the file next to its modules

    return os.path.join(os.path.dirname(os.path.dirname(mmtbx.__file__)), RUBREDOXIN)


def _payload(
    params: SimulateStills.Parameters, model: Any, model_file: str, truth: str, rotations: Any
) -> Dict[str, Optional[Any]]:
    """What later Tasks of the run read from the DB (``result.payload``), JSON-able."""
    return {
        "images": os.path.join(params.out_dir, f"{params.prefix}_*.cbf"),
        "n_images": params.n_images,
        "space_group": model.space_group,
        "unit_cell": list(model.unit_cell),
        "pdb_file": model_file,
        "truth_mtz": truth,
        "truth_column": "F",
        "d_min": params.d_min,
        "wavelength": params.wavelength,
        "detector_distance": params.detector_distance,
        "orientations": [list(r) for r in rotations],
    }
