"""SubmitSMD's parameters: upstream LUTE's ``SubmitSMDParameters``, validated on the host.

Owns the config section of ``SubmitSMD`` (names, types, defaults and derived defaults as upstream's
``lute/io/models/smd.py``) and its nested ``ProducerParameters`` (the smalldata_tools producer
variables rendered into the producer configuration). Upstream passes unknown top-level keys to the
template; here only the template's own variable names are accepted at the top level (they join
``producer_parameters``), anything else is an unknown key. Pydantic and the stdlib only: imported
by the host and inside the psana2 image. It must not run psana or write files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    NonNegativeInt,
    PositiveInt,
    field_validator,
    model_validator,
)

from lute_kernel.parameters import TaskParameters, param

from ._smd_producer_models import ProducerParameters

TEMPLATE_NAME = "smd_producer_template.py"
UPSTREAM_TEMPLATES = (TEMPLATE_NAME, "smd1_prod_config_template.py", "smd2_prod_config_template.py")
"""Upstream's template names: any of them renders lute-kernel's producer configuration."""
IMPLEMENTED = ("detnames", "epicsPV", "getROIs", "getAzIntPyFAIParams", "detSumAlgos")
SUM_ALGOS = ("calib", "calib_max")
"""Producer variables lute-kernel's psana2 producer implements (the others are upstream's, accepted by
the model but refused before launch so that nothing is silently skipped)."""
TEMPLATE_VARIABLES = (*ProducerParameters.model_fields, "getPhotonsParams", "getProjection_ax0", "getProjection_ax1")
"""Names accepted at the top level of the section (upstream: unknown keys are template variables)."""
LCLS1_HUTCHES = ("cxi", "mec", "xcs", "xpp")


def default_ranks() -> int:
    """Upstream's default ``np``: the allocation's tasks (or this machine's cores) minus one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(int(os.environ.get("SLURM_NPROCS", cores)) - 1, 1)


class TemplateConfig(BaseModel):
    """Which template renders the producer configuration, and where the result goes."""

    model_config = ConfigDict(extra="forbid")

    template_name: str = Field(TEMPLATE_NAME, description="Template in config/templates/.")
    output_path: str = Field("", description="Rendered file. Default: <directory>/prod_config_<hutch>_r<run:04d>.py.")


class SubmitSMDParameters(TaskParameters):
    """Parameters for running the small-data producer to make a reduced HDF5 file of one run."""

    set_result: ClassVar[bool] = True

    executable: str = param(
        "mpirun", "MPI executable (upstream's launcher; here the kernel's launcher runs the ranks)."
    )
    np: PositiveInt = param(default_ranks(), "Number of processes (here: use `lute-kernel run --ranks N`).")
    map_by: str = param("core", "MPI rank mapping (upstream's --map-by).", rename_param="map-by")
    p_arg1: str = param("python", "Executable to run with MPI (i.e. python).")
    u: str = param("", "Python option for unbuffered output.")
    m: str = param("mpi4py.run", "Python option to execute a module's contents as __main__ module.")
    producer: str = param(
        "",
        "Path to the smalldata_tools producer script. Default: the experiment's smalldata_tools checkout. "
        "This kernel runs its own psana2 producer, which writes the same HDF5 layout.",
    )
    run: str = param(os.environ.get("RUN_NUM", ""), "DAQ run number. Default: $RUN_NUM, then the header's run.")
    experiment: str = param(
        os.environ.get("EXPERIMENT", ""), "LCLS experiment. Default: $EXPERIMENT, then the header's experiment."
    )
    stn: NonNegativeInt = param(0, "Hutch endstation.")
    config: Optional[str] = param(None, "Alternative name for the producer configuration file (prod_config_<config>).")
    nevents: int = param(int(1e9), "Number of events to process.")
    directory: Optional[str] = param(
        None, "Output directory. Default: <work_dir>/hdf5/smalldata (upstream: the experiment's hdf5/smalldata)."
    )
    gather_interval: PositiveInt = param(25, "Number of events to collect at a time (psana2's batch size).")
    norecorder: bool = param(False, "Whether to ignore recorder streams.")
    url: HttpUrl = param("https://pswww.slac.stanford.edu/ws-auth/lgbk", "Base URL for eLog posting.")
    epicsAll: bool = param(False, "Whether to store all EPICS PVs. Use with care.")
    full: bool = param(False, "Whether to store all data. Use with EXTRA care.")
    fullSum: bool = param(False, "Whether to store sums for all area detector images.")
    default: bool = param(False, "Whether to store only the default minimal set of data.")
    image: bool = param(False, "Whether to save everything as images. Use with care.")
    tiff: bool = param(False, "Whether to save all images as a single TIFF. Use with EXTRA care.")
    centerpix: bool = param(False, "Whether to mask center pixels for Epix10k2M detectors.")
    postRuntable: bool = param(False, "Whether to post run tables. Also used as a trigger for summary jobs.")
    wait: bool = param(False, "Whether to wait for a file to appear.")
    xtcav: bool = param(False, "Whether to add XTCAV processing to the HDF5 generation.")
    noarch: bool = param(False, "Whether to not use archiver data.")
    lute_template_cfg: TemplateConfig = param(TemplateConfig(), "Template of the producer configuration.")
    producer_parameters: Optional[ProducerParameters] = param(
        None, "Variables rendered into the producer configuration (detnames, getROIs, getAzIntPyFAIParams, ...)."
    )
    xtc_dir: Optional[str] = param(
        None,
        "lute-kernel: folder holding the run's <exp>-r<run:04d>-s*-c*.xtc2 (and smalldata/ index for MPI). "
        "Default: psana2's own search (the experiment's xtc folder).",
    )

    @model_validator(mode="before")
    @classmethod
    def _template_variables_at_top_level(cls, data: Any) -> Any:
        # Upstream hands unknown keys to the template; these are the template's own variables.
        if not isinstance(data, dict):
            return data
        top = {key: data[key] for key in data if key in TEMPLATE_VARIABLES}
        if not top:
            return data
        rest = {key: value for key, value in data.items() if key not in top}
        nested = rest.get("producer_parameters") or {}
        if not isinstance(nested, dict):
            return data  # the field's own validation reports it
        clash = sorted(set(top) & set(nested))
        if clash:
            raise ValueError(f"{', '.join(clash)} given both at the top level and in producer_parameters")
        if "getPhotonsParams" in top:  # the spelling of upstream's example configs
            top["getPhotonParams"] = top.pop("getPhotonsParams")
        rest["producer_parameters"] = {**nested, **top}
        return rest

    @field_validator("run", "experiment", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        # Upstream (pydantic 1) accepted `run: 99`; pydantic 2 needs the coercion spelled out.
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _derived(self) -> SubmitSMDParameters:
        header = self.lute_config
        self.experiment = self.experiment or header.experiment
        self.run = self.run or str(header.run)
        if not self.experiment:
            raise ValueError("SubmitSMD needs an experiment: set it in the header (or $EXPERIMENT)")
        if not self.run.split("_")[0].isdigit():
            raise ValueError(f"SubmitSMD needs a run number, got {self.run!r}: set run in the header (or $RUN_NUM)")
        hutch = self.experiment[:3].lower()
        if not self.producer:
            base = f"/sdf/data/lcls/ds/{hutch}/{self.experiment}/results/smalldata_tools"  # upstream's default text
            group = "lcls1_producers" if hutch in LCLS1_HUTCHES else "lcls2_producers"
            self.producer = f"{base}/{group}/smd_producer.py"
        if self.directory is None:
            self.directory = os.path.join(header.work_dir, "hdf5", "smalldata")
        if self.lute_template_cfg.template_name not in UPSTREAM_TEMPLATES:
            raise ValueError(f"lute_template_cfg.template_name: one of {', '.join(UPSTREAM_TEMPLATES)}")
        if not self.lute_template_cfg.output_path:
            # One file per run (upstream: one per hutch): runs of one experiment may be produced at once.
            name = f"prod_config_{self.config}" if self.config else f"prod_config_{hutch}_r{self.run_number:04d}.py"
            self.lute_template_cfg = TemplateConfig(
                template_name=self.lute_template_cfg.template_name, output_path=os.path.join(self.directory, name)
            )
        missing = self.unimplemented()
        if missing:
            raise ValueError(
                f"{', '.join(missing)}: not implemented by lute-kernel's psana2 producer "
                f"(it implements {', '.join(IMPLEMENTED)})"
            )
        return self

    @property
    def run_number(self) -> int:
        """The run as a number (upstream's ``RUN_NUM`` may read ``12_2024-11-22T...``)."""
        return int(self.run.split("_")[0])

    @property
    def out_file(self) -> str:
        """The HDF5 file: ``<directory>/<experiment>_Run<run:04d>.h5`` (upstream's name)."""
        assert self.directory is not None
        return os.path.join(self.directory, f"{self.experiment}_Run{self.run_number:04d}.h5")

    def unimplemented(self) -> List[str]:
        """Return the producer variables given here that lute-kernel's producer does not implement."""
        given = self.producer_parameters.model_dump(exclude_none=True) if self.producer_parameters else {}
        missing = [name for name, value in given.items() if name not in IMPLEMENTED and value not in ({}, [])]
        for det, algos in given.get("detSumAlgos", {}).items():
            missing.extend(f"detSumAlgos.{det}: {algo}" for algo in algos if algo not in SUM_ALGOS)
        return sorted(missing)

    def template_values(self) -> Dict[str, Any]:
        """Return the variables the producer template sees (unset producer variables are absent)."""
        values: Dict[str, Any] = {
            "experiment": self.experiment,
            "run": self.run_number,
            "hutch": self.experiment[:3].lower(),
            "directory": self.directory,
            "out_file": self.out_file,
            "nevents": self.nevents,
        }
        if self.producer_parameters is not None:
            values.update(self.producer_parameters.model_dump(exclude_none=True))
        return values

    def result_from_params(self) -> Optional[Any]:
        """The HDF5 file, as upstream's ``result_from_params``."""
        return self.out_file

    def template_path(self) -> Path:
        """Where the rendered producer configuration is written."""
        return Path(self.lute_template_cfg.output_path)
