"""What the small-data producer takes from each psana2 event, as smalldata_tools names it.

Owns one extractor per kind of data: the X-ray/laser status and event codes (``lightStatus/*``,
``timing/*``), scan variables (``scan/<name>``), EPICS PVs (``epics/<alias>``), every scalar field
of the other detectors (``<det>/<field>``, e.g. ``ipm_dg2/sum``, ``ebeam/ebeamPhotonEnergy``) and
the area detectors' ROIs (``<det>/ROI_<i>_sum``, ``_area``), pyFAI azimuthal integration
(``<det>/pyfai_azav``, ``pyfai_q``, ``pyfai_az``) and run sums (``Sums/<det>_calib``,
``Sums/<det>_calib_max``) with their settings under ``UserDataCfg/<det>/``. Runs in the psana2
image; psana objects come in, dicts of numpy values go out. It must not write files.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ._smd_reduce import light_codes, light_status, photon_energy_to_wavelength, pv_alias, roi_index, roi_values

log = logging.getLogger("lute.task.SubmitSMD")
Row = Dict[str, Any]
Extractor = Callable[[Any], Row]
SPECIAL = {"timing", "scan", "epics", "epicsinfo", "runinfo", "chunkinfo", "smdinfo", "step", "pvdetinfo", "triginfo"}
PHOTON_ENERGY = (("ebeam", "ebeamPhotonEnergy"), ("ebeamh", "ebeamPhotonEnergy"), ("ebeam", "photon_energy"))


class RunData:
    """Run-level outputs: sums over events and settings (``Sums/``, ``UserDataCfg/``) of this rank."""

    def __init__(self) -> None:
        self.sums: Dict[str, Any] = {}
        self.maxima: Dict[str, Any] = {}
        self.settings: Dict[str, Any] = {}

    def add_image(self, det: str, calib: Any) -> None:
        """Add one event's calibrated array to the detector's sum and maximum."""
        key = f"Sums/{det}_calib"
        values = np.nan_to_num(np.asarray(calib, dtype=np.float64))
        if key in self.sums:
            self.sums[key] += values
            self.maxima[f"{key}_max"] = np.maximum(self.maxima[f"{key}_max"], values)
        else:
            self.sums[key] = values.copy()
            self.maxima[f"{key}_max"] = values.copy()


def config_fields(run: Any, detname: str) -> Dict[str, List[str]]:
    """Return {interface: [field, ...]} that the run's configure transition declares for ``detname``."""
    for config in getattr(run, "configs", []):
        segments = getattr(getattr(config, "software", None), detname, None)
        if not segments:
            continue
        first = next(iter(segments.values()))
        found: Dict[str, List[str]] = {}
        for iface, alg in vars(first).items():
            if iface in ("dettype", "detid") or iface.startswith("_"):
                continue
            found[iface] = [f for f in vars(alg) if f not in ("software", "version") and not f.startswith("_")]
        return found
    return {}


def light_extractor(run: Any, hutch: str) -> Optional[Extractor]:
    """Event codes and the X-ray/laser status, when the run has a timing detector."""
    if "timing" not in run.detnames:
        return None
    raw = run.Detector("timing").raw
    codes = light_codes(hutch)

    def extract(evt: Any) -> Row:
        event_codes = raw.eventcodes(evt)
        row: Row = {f"lightStatus/{k}": v for k, v in light_status(event_codes, codes).items()}
        if event_codes is not None:
            row["timing/eventcodes"] = np.asarray(event_codes, dtype=np.uint8)
        if hasattr(raw, "destination"):
            try:
                row["timing/destination"] = int(raw.destination(evt))
            except (AttributeError, TypeError):  # older timing data has no destination field
                pass
        return row

    return extract


def scan_extractor(run: Any) -> Optional[Extractor]:
    """The step values of a scan run, per event."""
    names = [name for name, _ in (run.scaninfo or {}) if name != "step_docstring"]
    if not names:
        return None
    dets = {name: run.Detector(name) for name in names}

    def extract(evt: Any) -> Row:
        row: Row = {}
        for name, det in dets.items():
            value = det(evt)
            if value is not None and not isinstance(value, str):
                row[f"scan/{name}"] = float(value)
        return row

    return extract


def epics_extractor(run: Any, pvs: Sequence[Any]) -> Optional[Extractor]:
    """The PVs of ``epicsPV``: the latest value at each event."""
    dets: Dict[str, Any] = {}
    for spec in pvs:
        pv, alias = pv_alias(spec)
        try:
            dets[alias] = run.Detector(pv)
        except Exception as exc:  # smalldata_tools skips PVs the run lacks; say so
            log.warning("EPICS PV %s not in run %s: %s", pv, run.runnum, exc)
    if not dets:
        return None

    def extract(evt: Any) -> Row:
        row: Row = {}
        for alias, det in dets.items():
            value = det(evt)
            if value is not None and not isinstance(value, str):
                row[f"epics/{alias}"] = float(value)
        return row

    return extract


def scalar_extractors(run: Any, area: Sequence[str]) -> List[Extractor]:
    """Every numeric field (scalar or short 1-D array) of the detectors that are not area detectors."""
    extractors: List[Extractor] = []
    for detname in sorted(set(run.detnames) - set(area) - SPECIAL):
        det = run.Detector(detname)
        for iface_name, fields in config_fields(run, detname).items():
            iface = getattr(det, iface_name, None)
            readers = {f: getattr(iface, f) for f in fields if callable(getattr(iface, f, None))}
            if readers:
                extractors.append(_fields_reader(detname, readers))
    return extractors


def _fields_reader(detname: str, readers: Dict[str, Callable[[Any], Any]]) -> Extractor:
    def extract(evt: Any) -> Row:
        row: Row = {}
        for field, read in readers.items():
            value = read(evt)
            if value is None or isinstance(value, str):
                continue
            value = np.asarray(value)
            if value.dtype.kind in "biuf" and (value.ndim == 0 or (value.ndim == 1 and value.size <= 1024)):
                row[f"{detname}/{field}"] = value
        return row

    return extract


def photon_energy_reader(run: Any) -> Callable[[Any], Optional[float]]:
    """Return a reader of the event's photon energy (eV) from the beam's BLD (None without one)."""
    for detname, field in PHOTON_ENERGY:
        if detname in run.detnames:
            read = getattr(getattr(run.Detector(detname), "raw", None), field, None)
            if callable(read):
                return _energy_reader(read)
    return lambda evt: None


def _energy_reader(read: Callable[[Any], Any]) -> Callable[[Any], Optional[float]]:
    def energy(evt: Any) -> Optional[float]:
        value = read(evt)
        return None if value is None else float(value)

    return energy


class AreaDetector:
    """ROIs, azimuthal integration and run sums of one area detector."""

    def __init__(self, run: Any, name: str, rois: List[Dict[str, Any]], azav: Optional[Dict[str, Any]], data: RunData):
        if name not in run.detnames:
            raise ValueError(f"detnames: no detector {name!r} in run {run.runnum}; found {sorted(run.detnames)}")
        self.name, self.rois, self.azav_cfg, self.data = name, rois, azav, data
        self.raw = run.Detector(name).raw
        self.photon_energy = photon_energy_reader(run)
        self.integrator: Any = None
        self.use_raw = False

    def calib(self, evt: Any) -> Any:
        """The calibrated array (raw when the run has no calibration constants)."""
        if not self.use_raw:
            try:
                values = self.raw.calib(evt)
                if values is not None:
                    return values
            except Exception as exc:  # skip_calib_load: no pedestals or gains for this detector
                log.warning("%s: no calibrated data (%s); storing raw ADU", self.name, exc)
            self.use_raw = True
        return self.raw.raw(evt)

    def __call__(self, evt: Any) -> Row:
        calib = self.calib(evt)
        if calib is None:
            return {}
        calib = np.asarray(calib, dtype=np.float64)
        self.data.add_image(self.name, calib)
        row: Row = {}
        for i, roi in enumerate(self.rois):
            index = roi_index(roi["ROI"], calib.shape)
            total, area = roi_values(calib, index, roi.get("thresADU"))
            row[f"{self.name}/ROI_{i}_sum"] = total
            if roi.get("writeArea"):
                row[f"{self.name}/ROI_{i}_area"] = area
            self.data.settings[f"UserDataCfg/{self.name}/ROI_{i}__bound"] = np.asarray(roi["ROI"], dtype=np.int64)
        if self.azav_cfg is not None:
            row.update(self.integrate(evt, calib))
        return row

    def image(self, evt: Any, calib: Any) -> Any:
        """The assembled 2-D image: psana's own, else the single segment of the calibrated array."""
        squeezed = np.squeeze(calib)
        if squeezed.ndim == 2:
            return squeezed
        image = getattr(self.raw, "image", None)
        if callable(image):
            return np.asarray(image(evt), dtype=np.float64)
        raise ValueError(f"{self.name}: no 2-D image for pyFAI (calibrated shape {calib.shape})")

    def integrate(self, evt: Any, calib: Any) -> Row:
        """PyFAI azimuthal integration of the event's image (smalldata_tools' azav_pyfai keys)."""
        image = self.image(evt, calib)
        cfg = self.azav_cfg
        assert cfg is not None
        if self.integrator is None:
            self.integrator = self.make_integrator(evt, image.shape)
        method = ("bbox", "csr", "cython")
        if cfg["return2d"]:
            intensity, q, az = self.integrator.integrate2d(
                image, cfg["npts"], cfg["npts_az"], unit=cfg["int_units"], method=method
            )
            return {f"{self.name}/pyfai_azav": intensity, f"{self.name}/pyfai_q": q, f"{self.name}/pyfai_az": az}
        q, intensity = self.integrator.integrate1d(image, cfg["npts"], unit=cfg["int_units"], method=method)
        return {f"{self.name}/pyfai_azav": intensity, f"{self.name}/pyfai_q": q}

    def make_integrator(self, evt: Any, shape: Tuple[int, ...]) -> Any:
        """Build the integrator once: from a poni file, or from ai_kwargs, pix_size and the photon energy."""
        import pyFAI
        from pyFAI.detectors import Detector

        cfg = self.azav_cfg
        assert cfg is not None
        if cfg.get("poni_file"):
            integrator = pyFAI.load(cfg["poni_file"])
        else:
            kwargs = dict(cfg.get("ai_kwargs") or {})
            pixel1 = kwargs.pop("pixel1", None) or cfg.get("pix_size")
            pixel2 = kwargs.pop("pixel2", None) or cfg.get("pix_size")
            if not pixel1 or not pixel2:
                raise ValueError(f"getAzIntPyFAIParams.{self.name}: give pix_size (or ai_kwargs pixel1/pixel2)")
            if not kwargs.get("wavelength"):
                energy = self.photon_energy(evt)
                if not energy:
                    raise ValueError(
                        f"getAzIntPyFAIParams.{self.name}: no photon energy in the run; give ai_kwargs.wavelength"
                    )
                kwargs["wavelength"] = photon_energy_to_wavelength(energy)
            detector = Detector(pixel1=pixel1, pixel2=pixel2, max_shape=shape)
            integrator = pyFAI.load({**{k: v for k, v in kwargs.items() if v is not None}, "detector": detector})
        settings = self.data.settings
        for key in ("dist", "poni1", "poni2", "rot1", "rot2", "rot3", "pixel1", "pixel2", "wavelength"):
            settings[f"UserDataCfg/{self.name}/pyfai__azcfg_{key}"] = float(getattr(integrator, key))
        settings[f"UserDataCfg/{self.name}/pixel_size"] = float(integrator.pixel1)
        return integrator
