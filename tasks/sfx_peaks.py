"""SFX peak finding: Bragg peaks of each event to CXI files and the ``.lst`` CrystFEL indexes.

``FindPeaksSFX`` (upstream's ``PeakFinderSFX``; psana2 image, MPI) reads an XTC2 run with psana2 and
finds peaks with psana2's own finders: ``Peakfinder8`` / ``Peakfinder8_v2`` (Cheetah's
peakfinder8, its radius map from a CrystFEL geometry file) or ``PyAlgos`` (psalg's adaptive v3r3).
``FindPeaksPyAlgos`` (upstream's ``PeakFinderPyAlgos``; psana1 image, S3DF only) does the same on
LCLS-I XTC with psana1's PyAlgos. Both write upstream LUTE's CXI layout and record the ``.lst``
path as ``out_file`` (IndexCrystFEL's default input). Parameters, types and defaults are upstream's
(``lute/io/models/sfx_find_peaks.py``); heavy imports live in the ``_sfx_*`` helpers, used by
``run()`` only, so the host validates without psana.
"""

from __future__ import annotations

import os
from typing import ClassVar, Literal, Optional, Union

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from lute_kernel.parameters import TaskParameters, on_worker, param
from lute_kernel.task import Task


class SZCompressorParameters(BaseModel):
    """libpressio's SZ compression of hits (upstream's compression-validation option)."""

    compressor: Literal["qoz", "sz3"] = Field("qoz", description='Compression algorithm ("qoz" or "sz3")')
    abs_error: float = Field(10.0, description="Absolute error bound")
    bin_size: int = Field(2, description="Bin size")
    roi_window_size: int = Field(9, description="Default window size")


class PeakFinderParameters(TaskParameters):
    """What both peak finders take (upstream's FindPeaksPyAlgos/FindPeaksSFX fields)."""

    set_result = True

    outdir: str = param(..., "Output directory for cxi files")
    n_events: int = param(0, "Number of events to process (0 to process all events)")
    det_name: str = param(..., "Psana name of the detector storing the image data")
    event_receiver: Literal["evr0", "evr1"] = param(..., "Event Receiver to be used: evr0 or evr1")
    tag: str = param("", "Tag to add to the output file names")
    event_logic: bool = param(False, "Only process events with event_code (False: ignore event codes)")
    event_code: int = param(0, "Required event code for events to be processed if event_logic is True")
    psana_mask: bool = param(False, "If True, apply mask from psana Detector object")
    mask_file: Optional[str] = param(None, "HDF5 file with a custom mask (entry_1/data_1/mask; 1 = good). None: none")
    min_peaks: int = param(2, "Minimum number of peaks per image")
    max_peaks: int = param(2048, "Maximum number of peaks per image")
    npix_min: int = param(2, "Minimum number of pixels per peak")
    npix_max: int = param(30, "Maximum number of pixels per peak")
    amax_thr: float = param(80.0, "Minimum intensity threshold for starting a peak")
    atot_thr: float = param(120.0, "Minimum summed intensity threshold for pixel collection")
    son_min: float = param(7.0, "Minimum signal-to-noise ratio to be considered a peak")
    peak_rank: int = param(3, "Radius in which central peak pixel is a local maximum")
    r0: float = param(3.0, "Radius of ring for background evaluation in pixels")
    dr: float = param(2.0, "Width of ring for background evaluation in pixels")
    nsigm: float = param(7.0, "Intensity threshold to include pixel in connected group")
    compression: Optional[SZCompressorParameters] = param(None, "Options for the SZ Compression Algorithm")

    @field_validator("mask_file")
    @classmethod
    def _mask_file_exists(cls, mask_file: Optional[str], info: ValidationInfo) -> Optional[str]:
        return _existing(mask_file, info)

    @model_validator(mode="after")
    def _default_out_file(self) -> PeakFinderParameters:
        out_file: str = getattr(self, "out_file", "")
        if not out_file:  # upstream: <outdir>/<exp>_<run>_<tag>.list
            header = self.lute_config
            self.out_file = os.path.join(self.outdir, f"{header.experiment}_{header.run}_{self.tag}.list")
        return self


def _existing(path: Optional[str], info: ValidationInfo) -> Optional[str]:
    # The host checks inputs before any container starts; the worker trusts it.
    if path and not on_worker(info) and not os.path.isfile(path):
        raise ValueError(f"{path!r} does not exist")
    return path


class FindPeaksSFX(Task):
    """Bragg peak finding on LCLS-II XTC2 with psana2 (peakfinder8 or psalg), hits to CXI files."""

    image = "psana2"
    aliases = ("PeakFinderSFX",)
    env = ("PS_*", "SIT_*")  # psana2's MPI tuning and its data root ($SIT_PSDM_DATA)
    mpi = True  # one rank: serial; two: every other event each; three or more: psana2's MPI mode

    class Parameters(PeakFinderParameters):
        """Parameters of FindPeaksSFX (upstream's FindPeaksSFXParameters)."""

        algorithm: Literal["PyAlgos", "Peakfinder8", "Peakfinder8_v2"] = param(
            "Peakfinder8", "The peakfinding algorithm to use. Either Peakfinder8 (v1 or v2) or PyAlgos."
        )
        pv_camera_length: Union[float, str] = param(
            ..., "PV associated with camera length (if a number, camera length directly)", union_mode="left_to_right"
        )
        psana_version: Literal[1, 2] = param(2, "psana generation of the data: 2 for LCLS-II xtc2, 1 for LCLS-I xtc.")
        out_file: str = param("", "Path to output file (the .lst of CXI files).", is_result=True)
        geometry_file: Optional[str] = param(None, "A path to a CrystFEL geometry file (for pf8).")
        make_powder_plots: bool = param(
            True, "Whether to generate assembled powder plots in the eLog (here: powders stay in the CXI file)."
        )
        xtc_dir: Optional[str] = param(
            None, "Folder with the run's XTC2 files and smalldata/ index. Default: $SIT_PSDM_DATA/<hutch>/<exp>/xtc."
        )
        logbook_lookup: bool = param(False, "Ask the LCLS logbook for the run's files (off: files on disk).")

        @field_validator("geometry_file")
        @classmethod
        def _geometry_file_exists(cls, geometry_file: Optional[str], info: ValidationInfo) -> Optional[str]:
            return _existing(geometry_file, info)

        @model_validator(mode="after")
        def _runnable_here(self) -> FindPeaksSFX.Parameters:
            if self.psana_version == 1:
                raise ValueError("psana_version 1 (LCLS-I xtc) needs psana1: run FindPeaksPyAlgos (psana1 image)")
            if not str(self.lute_config.run).isdigit():
                raise ValueError(f"the config header needs the run number (got run={self.lute_config.run!r})")
            if self.algorithm.startswith("Peakfinder8") and not self.geometry_file:
                raise ValueError(f"{self.algorithm} needs geometry_file (its radius map), or use algorithm: PyAlgos")
            return self

    def run(self) -> None:
        """Find peaks in this rank's events; rank 0 writes the master CXI file and the .lst."""
        from ._sfx_events import events, mpi_world
        from ._sfx_run import find_peaks

        params = self.params
        assert isinstance(params, FindPeaksSFX.Parameters)
        if params.compression is not None:
            raise RuntimeError("compression needs libpressio, which the psana2 image does not hold")
        comm = mpi_world()
        rank, size = (comm.Get_rank(), comm.Get_size()) if comm is not None else (0, 1)
        find_peaks(self, events(params, rank, size), _psana2_finder, rank, size, comm)


def _psana2_finder(params: FindPeaksSFX.Parameters, mask: object, shape: object):  # type: ignore[no-untyped-def]
    from . import _sfx_finders as finders
    from ._sfx_geometry import parse_geometry, radius_map

    if params.algorithm == "PyAlgos":
        return finders.pyalgos(params, mask, shape)
    with open(str(params.geometry_file)) as handle:
        radius = radius_map(parse_geometry(handle.read()))
    make = finders.peakfinder8 if params.algorithm == "Peakfinder8" else finders.peakfinder8_v2
    return make(params, mask, radius, shape)


class FindPeaksPyAlgos(Task):
    """Bragg peak finding on LCLS-I XTC with psana1's PyAlgos (v3r3), hits to CXI files (S3DF)."""

    image = "psana1"
    aliases = ("PeakFinderPyAlgos",)
    env = ("SIT_*",)
    mpi = True

    class Parameters(PeakFinderParameters):
        """Parameters of FindPeaksPyAlgos (upstream's FindPeaksPyAlgosParameters)."""

        algorithm: ClassVar[str] = "PyAlgos"  # not a parameter: the CXI layout the shared loop writes

        pv_camera_length: Union[str, float] = param(
            "", "PV associated with camera length (if a number, camera length directly)"
        )  # upstream requires it; its own test.yaml omits it, so "" (= say it at run time) is accepted
        out_file: str = param("", "Path to output file.", flag_type="-", rename_param="o", is_result=True)

    def run(self) -> None:
        """Find peaks with PyAlgos on this rank's events (psana1's MPIDataSource shares them out)."""
        from ._sfx_lcls1 import events, pyalgos_finder
        from ._sfx_run import find_peaks

        params = self.params
        assert isinstance(params, FindPeaksPyAlgos.Parameters)
        if params.pv_camera_length == "":
            raise ValueError("pv_camera_length is empty: give the camera-length PV or the distance")
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        rank, size = comm.Get_rank(), comm.Get_size()
        find_peaks(self, events(params), pyalgos_finder, rank, size, comm if size > 1 else None)
