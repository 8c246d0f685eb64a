"""The small-data producer's variables: upstream LUTE's ``SubmitSMDParameters.ProducerParameters``.

Owns the typed models of what a user may put in ``producer_parameters`` (or, as upstream allows, at
the top level of the ``SubmitSMD`` section): detector lists, PVs and the per-detector algorithm
settings of smalldata_tools (``getROIs``, ``getAzIntPyFAIParams``, ...). Names, types and defaults
are upstream's; upstream's pydantic 1 made ``Optional`` fields without a default optional, and so do
these. A few fields that upstream's example configs use but its models drop (``pix_size``, the
integrator's pixel and rotation keywords) are declared so that they reach the producer. Pydantic and
the stdlib only; it must not import the producer.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Union

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IntgParams(_Model):
    """Integrating detectors (LCLS-II only)."""

    intg_main: str = Field(description="The integrating detector passed to psana: the SLOWEST one in the data.")
    intg_addl: List[str] = Field(description="More integrating detectors, commensurate and in phase with intg_main.")


class ROIParams(_Model):
    """Rectangular regions of interest of one detector."""

    ROIs: Optional[List[List[List[int]]]] = Field(
        None, description="ROIs, each [[start, stop), ...] on the last axes of the calibrated array (several allowed)."
    )
    writeArea: bool = Field(False, description="Whether to write out the area image of the ROI.")
    thresADU: Optional[float] = Field(None, description="Pixels below this ADU count as 0.")
    calcPars: Optional[bool] = Field(False, description="Also compute ROI statistics (upstream option).")


class AzIntParams(_Model):
    """smalldata_tools' own azimuthal binning."""

    eBeam: float = Field(description="Beam energy in keV.")
    center: List[float] = Field(description="Beam center in micrometers")
    dis_to_sam: float = Field(description="Detector distance in millimeters.")
    tx: float = Field(0, description="Tilt in x, degrees")
    ty: float = Field(0, description="Tilt in y, degress")


class AiKwargs(_Model):
    """pyFAI ``AzimuthalIntegrator`` keywords (meters and radians)."""

    dist: float = Field(description="Detector distance.")
    poni1: float = Field(description="First poni.")
    poni2: float = Field(description="Second poni.")
    rot1: float = Field(0.0, description="Rotation 1 (radians).")
    rot2: float = Field(0.0, description="Rotation 2 (radians).")
    rot3: float = Field(0.0, description="Rotation 3 (radians).")
    pixel1: Optional[float] = Field(None, description="Pixel size along rows (m). Default: pix_size.")
    pixel2: Optional[float] = Field(None, description="Pixel size along columns (m). Default: pix_size.")
    wavelength: Optional[float] = Field(None, description="Wavelength (m). Default: from the run's photon energy.")


class AzIntPyFAIParams(_Model):
    """Azimuthal integration with pyFAI."""

    pix_size: Optional[float] = Field(None, description="Pixel size in meters (when ai_kwargs has no pixel1/2).")
    poni_file: Optional[str] = Field(None, description="Path to a poni file. Must provide poni_file or ai_kwargs.")
    ai_kwargs: Optional[AiKwargs] = Field(None, description="Integration paramters if not using a poni file.")
    npts: int = Field(512, description="Number of q points/bins.")
    npts_az: int = Field(13, description="Number of phi bins.")
    int_units: str = Field("2th_deg", description="Integration units")
    return2d: bool = Field(False, description="Whether to return the 2D q/phi integration.")


class PhotonParams(_Model):
    """Photon counting."""

    ADU_per_photon: float = Field(9.5, description="Number of ADU per photon.")
    thresADU: float = Field(0.8, description="Threshold in fraction of ADU_per_photon.")


class DropletParams(_Model):
    """Droplet finding."""

    name: str = Field("droplet", description="HDF5 key name for storing droplet data.")
    threshold: float = Field(5, description="Threshold for pixel to be part of a droplet. Sigma or ADU (useRms).")
    thresholdLow: float = Field(5, description="Lower threshold to make spectrum sharper.")
    thresADU: float = Field(60, description="Threshold on droplet ADU. Rejects droplets below this.")
    useRms: bool = Field(True, description="If True, threshold/thresholdLow are RMS of data, otherwise in ADU.")
    nData: Optional[int] = Field(100000, description="(float,int or None).")
    relabel: bool = Field(True, description="After initial finding, relabel image.")


class Droplet2PhotonDroplet(_Model):
    """Droplet finding inside droplet2photons."""

    threshold: float = Field(5, description="Threshold for pixel to be part of a droplet. Sigma or ADU (useRms).")
    thresholdLow: float = Field(5, description="Lower threshold to make spectrum sharper.")
    thresADU: float = Field(60, description="Threshold on droplet ADU. Rejects droplets below this.")
    useRms: bool = Field(True, description="If True, threshold/thresholdLow are RMS of data, otherwise in ADU.")


class Droplet2PhotonParams(_Model):
    """Droplets to photons."""

    droplet: Droplet2PhotonDroplet = Field(Droplet2PhotonDroplet(), description="Droplet finding parameters.")
    aduspphot: int = Field(162, description="ADU per photon.")
    cputime: bool = Field(True, description="Record the CPU time.")
    nData: float = Field(3e4, description="Number of droplets stored per event.")


class SvdParams(_Model):
    """SVD waveform fitting."""

    name: str = Field("svdFit", description="DetObject name.")
    n_components: int = Field(2, description="Number of components to use. Max is 25.")
    basis_file: Optional[str] = Field(None, description="Basis file.")
    n_pulse: int = Field(1, description="Number of pulses to fit.")
    delay: Optional[List[float]] = Field([0.0], description="Delay between pulses.")
    mode: str = Field("max", description="Method to calculate pulse amplitudes. max, norm, or both.")
    return_reconstructed: bool = Field(False, description="Return the reconstructed waveforms.")


class IlluminationParams(_Model):
    """Illumination correction of the auto-correlation."""

    correction: str = Field(description="Path to correction arrays. One per mask/ROI.")
    kernel: int = Field(description="Kernel size used in the creation of the correction.")


class AutocorrParams(_Model):
    """Auto-correlation."""

    name: str = Field("autocorr", description="DetObject name.")
    threshADU: List[float] = Field([-1e6, 1e6], description="Low and high pixel intensity thresholds.")
    mask: Optional[str] = Field(None, description="Mask to define a non-rectangular ROI.")
    save_lineout: bool = Field(False, description="Save autocorr image or only vertical/horizontal lineouts.")
    save_range: Tuple[int, int] = Field((50, 50), description="Size of the autocorr image to save.")
    illumination_correction: Optional[IlluminationParams] = Field(None, description="Corrections for each mask/ROI.")


PV = Union[str, Tuple[str, str]]


class ProducerParameters(_Model):
    """Everything the producer template can be given."""

    detnames: Optional[List[str]] = Field(None, description="List of detectors to process.")
    integrating_detectors: Optional[List[str]] = Field(None, description="Integrating detectors. Only for LCLS2.")
    epicsPV: Optional[List[PV]] = Field(None, description="PVs to save once per event: names or [pv, alias].")
    epicsOncePV: Optional[List[PV]] = Field(None, description="List of PVs to save once per run.")
    ttCalib: Optional[List[float]] = Field(None, description="Alternative calibration parameters for the timetool.")
    aioParams: Optional[List[List[Union[str, int, float]]]] = Field(
        None, description="Save analog inputs and give them nice names. [[inp],['name']]"
    )
    get_intg: Optional[IntgParams] = Field(None, description="Integrating detector configuration. LCLS2 only.")
    getROIs: Optional[Dict[str, ROIParams]] = Field(None, description="ROI parameters by detector.")
    getAzIntParams: Optional[Dict[str, AzIntParams]] = Field(None, description="Azimuthal binning by detector.")
    getAzIntPyFAIParams: Optional[Dict[str, AzIntPyFAIParams]] = Field(
        None, description="Azimuthal integration with pyFAI, by detector."
    )
    getPhotonParams: Optional[Dict[str, PhotonParams]] = Field(None, description="Photon counting by detector.")
    getDropletParams: Optional[Dict[str, DropletParams]] = Field(None, description="Droplet finding by detector.")
    getDroplet2Photons: Optional[Dict[str, Droplet2PhotonParams]] = Field(
        None, description="droplet2photon parameters by detector."
    )
    getSvdParams: Optional[Dict[str, SvdParams]] = Field(None, description="SVD parameters by detector.")
    getAutocorrParams: Optional[Dict[str, AutocorrParams]] = Field(None, description="Auto-correlation by detector.")
    detSumAlgos: Optional[Dict[str, List[str]]] = Field(
        None, description="Run sums to store per detector (newer upstream), e.g. ['calib', 'calib_max']."
    )
    getProjection_ax0: Optional[Dict[str, Any]] = Field(None, description="Projections on axis 0 (template only).")
    getProjection_ax1: Optional[Dict[str, Any]] = Field(None, description="Projections on axis 1 (template only).")
