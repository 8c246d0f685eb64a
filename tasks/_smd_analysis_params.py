"""Parameters of the small-data analyzers: upstream LUTE's ``AnalyzeSmallDataXSS/XAS/XESParameters``.

Owns the three config sections (names, types and defaults of upstream's ``lute/io/models/smd.py``)
and their DB-derived default: an empty ``smd_path`` is the file the newest valid ``SubmitSMD`` run
recorded, else the run's file in ``<work_dir>/hdf5/smalldata`` (upstream: the experiment's
``hdf5/smalldata``), else an error, as upstream's ``validate_smd_path``. Also used by the geometry
Tasks for their ``powder``. Pydantic and the stdlib only; it must not open the file.
"""

from __future__ import annotations

import os
from typing import List, Optional, Union

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from lute_kernel.parameters import AnalysisHeader, TaskParameters, on_worker, param, recorded_value

SMD_TASK = "SubmitSMD"


def smd_file_default(value: str, info: ValidationInfo, what: str = "hdf5") -> str:
    """Fill an empty small-data path: SubmitSMD's recorded payload, else the run's usual file, else fail."""
    if value or on_worker(info):
        return value
    recorded = recorded_value(info, SMD_TASK, "result.payload")
    if recorded:
        return str(recorded)
    header = info.data.get("lute_config")
    if isinstance(header, AnalysisHeader) and header.experiment and str(header.run).isdigit():
        name = f"{header.experiment}_Run{int(header.run):04d}.h5"
        candidate = os.path.join(header.work_dir, "hdf5", "smalldata", name)
        if os.path.isfile(candidate):
            return candidate
    raise ValueError(f"No path provided for {what} and cannot auto-determine! (no valid {SMD_TASK} run recorded)")


class Thresholds(BaseModel):
    """Event filters on intensity."""

    model_config = ConfigDict(extra="forbid")

    min_Iscat: float = Field(10.0, description="Minimum scattering intensity to use for filtering.")
    min_ipm: float = Field(1000.0, description="Minimum X-ray intensity to use for filtering.")


ScanVar = Optional[Union[List[str], str]]


class _AnalyzeParameters(TaskParameters):
    """What every analyzer shares."""

    smd_path: str = param("", "Path to the Small Data HDF5 file to analyze. Default: SubmitSMD's output.")
    xss_detname: Optional[str] = param(
        None, "Name of the detector with scattering data. Default: the first of epix10k2M, Rayonix, Jungfrau4M found."
    )
    ipm_var: str = param(..., "Name of the IPM to use for X-Ray intensity filtering (e.g. ipm_dg2/sum).")
    scan_var: ScanVar = param(
        None, "Name of a scan variable or a list of scan variables to analyze (the first found). E.g. lxt, lens_h."
    )
    thresholds: Thresholds = Field(
        Thresholds(),
        description="Event filters: min_Iscat (integrated scattering), min_ipm (X-ray intensity).",
        validation_alias=AliasChoices("thresholds", "intensity_thresholds"),
    )

    @field_validator("smd_path")
    @classmethod
    def _find_smd_path(cls, smd_path: str, info: ValidationInfo) -> str:
        return smd_file_default(smd_path, info)

    @property
    def figure_prefix(self) -> str:
        """Figures go next to the HDF5 file: ``<file stem>_<analysis>``."""
        return os.path.splitext(self.smd_path)[0]


class AnalyzeSmallDataXSSParameters(_AnalyzeParameters):
    """Difference scattering (laser on - off) binned by a scanned motor: overlap and XSS feedback."""

    xss_event_codes: Optional[List[int]] = param(
        None, "More event codes to compare with laser-off shots (newer upstream; reported per code)."
    )


class AnalyzeSmallDataXASParameters(_AnalyzeParameters):
    """Difference absorption binned by CCM energy (and by a scanned motor): edge and XAS feedback."""

    xas_detname: str = param(..., "Name of the detector with absorption data (its ROI_0_sum is the signal).")
    ccm: str = param(..., "Name of the PV for CCM position readback (an HDF5 dataset, e.g. epics/ccm_E).")
    ccm_set: Optional[str] = param(None, "Name of the PV for the setpoint of the CCM (better binning when present).")
    element: Optional[Union[str, bool]] = param(
        None, "Element under investigation. Currently unused. For future EXAFS."
    )


class AnalyzeSmallDataXESParameters(_AnalyzeParameters):
    """Difference emission from spectrometer projections, binned by a scanned motor."""

    xes_detname: str = param(..., "Name of the detector with emission data (its ROI_0_area holds the images).")
    invert_xes_axes: bool = param(
        False, "Flip the projection axes depending on detector orientation. Default: the spectrum runs along axis 1."
    )
    rot_angle: Optional[float] = param(
        None, "Optionally rotate the ROIs by a small amount (degrees) before projection."
    )
    batch_size: int = param(0, "If non-zero load ROIs in batches of this many events. Slower but may help OOM errors.")
