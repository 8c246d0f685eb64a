"""BayFAI: detector geometry from a calibrant powder with pyFAI and Bayesian optimisation (MPI).

Owns the ``BayFAI`` Task (upstream managed Tasks ``BayFAIOptimizer`` and ``BayFAIOptimizer2``) and
its parameters, upstream LUTE's ``BayFAIParameters`` (newest: ``h5``, ``wavelength``; the older
``powder``, ``in_file`` and ``preprocess`` are accepted too). An empty ``h5`` is SubmitSMD's file for
the run; an empty ``out_file`` is ``<work_dir>/geom/<run>-end.data``. Each rank optimises at its own
distance (``_bayfai_opt``); rank 0 writes the geometry (psana ``.data``, pyFAI ``.poni``, JSON) and a
PNG figure, and reports distance and centre. The detector is a pixel matrix of the size the producer
recorded (upstream builds it from psana metrology with LCLSGeom). Runs in the psana2 image.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from lute_kernel.parameters import TaskParameters, on_worker, param
from lute_kernel.task import Task

from ._smd_analysis_params import smd_file_default

GEOMETRY_PARAMETERS = ("dist", "poni1", "poni2", "rot1", "rot2", "rot3")


class BayesGeomOptParameters(BaseModel):
    """Bayesian optimization hyperparameters."""

    model_config = ConfigDict(extra="forbid")

    n_samples: int = Field(20, description="Number of samples to initialize the Gaussian Process.", ge=1)
    n_iterations: int = Field(80, description="Number of iterations of Bayesian Optimization", ge=0)
    max_rings: int = Field(6, description="Maximum number of rings to search for Bragg peaks.", ge=1)
    pts_per_deg: float = Field(0.5, description="Number of Bragg peaks to extract per azimuthal degree.", gt=0)
    Imin: float = Field(
        95, description="Minimum intensity percentile threshold for Bragg peak detection.", ge=0, le=100
    )
    prior: bool = Field(
        True, description="Sample initial points around the center of the search space (else randomly)."
    )
    beta: float = Field(1.96, description="Exploration-exploitation trade-off of the Upper Confidence Bound.")
    step: int = Field(5, description="Size of the refinement space around best parameters (in resolutions).", ge=0)
    lbda: float = Field(0.1, description="Penalty weight in final scoring to select winner geometry.")
    seed: Optional[int] = Field(None, description="Random seed for reproducibility.")
    alpha: Optional[float] = Field(None, description="Older BayFAI's residual-uncertainty weight (use lbda).")


class BayFAIParameters(TaskParameters):
    """Parameters for optimizing detector geometry using pyFAI and Bayesian optimization."""

    set_result = True

    center: Dict[str, float] = param(
        {"dist": 0.1, "poni1": 0.0, "poni2": 0.0, "rot1": 0.0, "rot2": 0.0, "rot3": 0.0},
        "Center of the search space for the detector geometry parameters (m, rad).",
    )
    bounds: Dict[str, Tuple[float, float]] = param(
        {
            "dist": (-0.05, 0.05),
            "poni1": (-0.005, 0.005),
            "poni2": (-0.005, 0.005),
            "rot1": (-0.1, 0.1),
            "rot2": (-0.1, 0.1),
            "rot3": (-0.1, 0.1),
        },
        "Bounds of the search space for the detector geometry parameters, around center.",
    )
    resolutions: Dict[str, float] = param(
        {"dist": 0.001, "poni1": 0.0001, "poni2": 0.0001, "rot1": 0.02, "rot2": 0.02, "rot3": 0.02},
        "Resolution of the search space for the detector geometry parameters.",
    )
    fixed: List[str] = param(["rot3"], "List of fixed parameters for the optimization.")
    detname: str = param("", "Detector name.")
    calibrant: str = param("", "Calibrant supported by pyFAI, e.g. Silver Behenate 'AgBh', 'LaB6', 'CeO2'.")
    wavelength: float = param(
        1e-10, "Wavelength in meters. If not the default, it takes precedence over the file's photon energy."
    )
    h5: str = param("", "Smalldata hdf5 file path to be used for the calibration. Default: SubmitSMD's file.")
    out_file: str = param(
        "", "Output .data file of the optimized geometry. Default: <work_dir>/geom/<run>-end.data.", is_result=True
    )
    bo_params: BayesGeomOptParameters = param(BayesGeomOptParameters(), "Bayesian optimization hyperparameters.")
    powder: str = param("", "Older BayFAI's name of h5 (a small-data file or .npy powder).")
    in_file: str = param("", "Older BayFAI: psana metrology to calibrate (here the pixel matrix comes from h5).")
    preprocess: Optional[Union[bool, str]] = param(
        None, "Older BayFAI: powder preprocessing (here: always masked, clipped)."
    )

    @field_validator("h5")
    @classmethod
    def _find_h5(cls, h5: str, info: ValidationInfo) -> str:
        return smd_file_default(h5, info, what="powder")

    @field_validator("fixed")
    @classmethod
    def _known_parameters(cls, fixed: List[str]) -> List[str]:
        unknown = sorted(set(fixed) - set(GEOMETRY_PARAMETERS))
        if unknown:
            raise ValueError(f"fixed: unknown geometry parameter(s) {unknown}; known: {list(GEOMETRY_PARAMETERS)}")
        return fixed

    @model_validator(mode="before")
    @classmethod
    def _powder_is_h5(cls, data: Any) -> Any:
        # Declared after h5, the older name must be seen before h5's default is filled in.
        if isinstance(data, dict) and data.get("powder") and not data.get("h5"):
            data = {**data, "h5": data["powder"]}
        return data

    @model_validator(mode="after")
    def _complete(self, info: ValidationInfo) -> BayFAIParameters:
        missing = [
            p for p in GEOMETRY_PARAMETERS if p not in self.center or p not in self.resolutions or p not in self.bounds
        ]
        if missing:
            raise ValueError(f"center, bounds and resolutions need every geometry parameter; missing {missing}")
        for name in ("detname", "calibrant"):
            if not getattr(self, name):
                raise ValueError(f"{name} is empty: BayFAI needs it")
        if not self.out_file and not on_worker(info):
            run = self.lute_config.run
            self.out_file = os.path.join(self.lute_config.work_dir, "geom", f"{run}-end.data")
        return self


class BayFAI(Task):
    """Detector distance, centre and tilts from a calibrant powder: pyFAI steered by Bayesian optimisation."""

    image = "psana2"
    aliases = ("BayFAIOptimizer", "BayFAIOptimizer2")
    env = ("NUMEXPR_MAX_THREADS", "NUMEXPR_NUM_THREADS", "PS_*")
    mpi = True
    Parameters = BayFAIParameters

    def run(self) -> None:
        """Optimise at this rank's distance; rank 0 picks the winner and writes the geometry."""
        from ._bayfai_run import run_bayfai
        from ._smd_mpi import World

        params = self.params
        assert isinstance(params, BayFAIParameters)
        world = World()
        outcome: Optional[Tuple[Dict[str, Any], Dict[str, Any]]] = world.bcast(run_bayfai(params, world, self.log))
        assert outcome is not None
        self.result.summary, self.result.payload = outcome
