"""OptimizeAgBhGeometryExhaustive: detector distance and beam centre from a silver-behenate powder.

Owns the Task (upstream managed Task ``AgBhGeometryOptimizer``, an MPI Task) and its parameters,
upstream LUTE's ``OptimizeAgBhGeometryExhaustiveParameters`` (an empty ``powder`` is SubmitSMD's file
for the run). Every rank runs the search of ``_agbh`` from its share of the starting centres; rank 0
keeps the best answer, writes the geometry (``_geometry_io``: psana ``.data``, pyFAI ``.poni``, JSON)
and a PNG figure into ``geom_out_dir``. The pixel size, photon energy and starting distance come
from the small-data file (upstream reads them from psana1); ``distance_guess`` overrides. Runs in the
psana2 image; numpy, scipy, h5py, pyFAI and matplotlib are imported inside ``run()``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Tuple

from pydantic import ValidationInfo, field_validator, model_validator

from lute_kernel.parameters import TaskParameters, param
from lute_kernel.task import Task

from ._smd_analysis_params import smd_file_default


class OptimizeAgBhGeometryExhaustive(Task):
    """Detector distance and beam centre from an AgBh powder: exhaustive search over starting centres."""

    image = "psana2"
    aliases = ("AgBhGeometryOptimizer",)
    mpi = True

    class Parameters(TaskParameters):
        """Parameters of ``OptimizeAgBhGeometryExhaustive`` (upstream's names and defaults)."""

        set_result = True

        detname: str = param(..., "Name of the detector to optimize geometry for.")
        powder: str = param("", "Path to the powder image, or file containing it. Default: SubmitSMD's file.")
        geom_out_dir: str = param("", "Directory to write new geometry files to. Default: <work_dir>/geom.")
        mask: Optional[str] = param(None, "Path to a detector mask, or file containing it.")
        n_peaks: int = param(4, "Number of powder rings used to refine the centre.", ge=1)
        n_iterations: int = param(5, "Number of optimization iterations. Per MPI rank.", ge=0)
        threshold: float = param(1e6, "Pixels in the powder image with an intensity above this threshold are set to 0.")
        dx: Tuple[float, float, int] = param(
            (-6, 6, 5),
            "Search radius for beam center x position as offsets from the image center. "
            "Format: (left, right, num_steps). In units of pixels.",
        )
        dy: Tuple[float, float, int] = param(
            (-6, 6, 5),
            "Search radius for beam center y position as offsets from the image center. "
            "Format: (up, down, num_steps). In units of pixels.",
        )
        center_guess: Optional[Tuple[float, float]] = param(
            None, "Optional starting guess for the beam center (x, y) in pixels. Default: the image center."
        )
        distance_guess: Optional[float] = param(
            None, "Optional starting guess for the detector distance (mm). Default: the producer's pyFAI distance."
        )

        @field_validator("powder")
        @classmethod
        def _find_powder(cls, powder: str, info: ValidationInfo) -> str:
            return smd_file_default(powder, info, what="powder")

        @model_validator(mode="after")
        def _out_dir(self) -> OptimizeAgBhGeometryExhaustive.Parameters:
            if not self.geom_out_dir:
                self.geom_out_dir = os.path.join(self.lute_config.work_dir, "geom")
            for name in ("dx", "dy"):
                if getattr(self, name)[2] < 1:
                    raise ValueError(f"{name}: num_steps must be at least 1")
            return self

    def run(self) -> None:
        """Search from this rank's starting centres; rank 0 keeps the best and writes the geometry."""
        from ._agbh_run import run_agbh
        from ._smd_mpi import World

        params = self.params
        assert isinstance(params, OptimizeAgBhGeometryExhaustive.Parameters)
        world = World()
        outcome: Optional[Tuple[Any, Dict[str, Any]]] = world.bcast(run_agbh(params, world, self.log))
        assert outcome is not None
        self.result.summary, self.result.payload = outcome
