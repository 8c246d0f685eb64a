"""IndexCCTBXXFEL: spot finding, indexing and integration of stills with ``dials.stills_process``.

Upstream LUTE's Task (``lute/io/models/sfx_index.py``, managed Task ``CCTBXIndexer``): its names,
fields, defaults and template (``config/templates/cctbx_index.phil``, rendered by the kernel from
``phil_parameters`` before launch; ``lute-kernel explain`` shows it). An MPI Task: the kernel's
launcher starts the ranks (``--ranks N``: mpirun, or srun in an allocation) around
``dials.stills_process <in_file> <phil_file>`` in the ``cctbx`` image; ``mp.method=mpi`` (upstream's
default) shares the images among them. The indexing rate goes into the summary (``after`` tasklet).

What comes from the DB when the section leaves it out (the newest valid row of the same run):
the images (``in_file``) and the known cell and space group from ``SimulateStills``. The output
folder (``phil_parameters.output_output_dir``) is the Task's result, which ``MergeCCTBXXFEL`` reads.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Union

from pydantic import ConfigDict, ValidationInfo, field_validator, model_validator

from lute_kernel.parameters import TemplateParameters, ThirdPartyParameters, on_worker, param, recorded_value
from lute_kernel.task import ThirdPartyTask
from lute_kernel.tasklets import Tasklet
from lute_kernel.templates import RenderedFile, TemplateConfig, TemplateError, rendered_files

from ._cctbx_logs import indexing_summary as _indexing_summary  # noqa: F401  (the tasklet below)
from ._cctbx_logs import phil_setting


def make_output_dirs(phil_parameters: Optional[Dict[str, Any]], phil_file: str) -> Dict[str, str]:
    """Tasklet before the cctbx programs: make the output and log folders (stills_process does not)."""
    folders = [
        phil_setting(phil_parameters, key, phil_file, name)
        for key, name in (("output_output_dir", "output_dir"), ("output_logging_dir", "logging_dir"))
    ]
    made = sorted({folder for folder in folders if folder and folder != "None"})
    for folder in made:
        os.makedirs(folder, exist_ok=True)
    return {"output_dirs": ",".join(made)} if made else {}


def simulated_run(info: ValidationInfo) -> Optional[Dict[str, Any]]:
    """Return what SimulateStills recorded for this run (its payload), or None."""
    recorded = recorded_value(info, "SimulateStills", "result.payload")
    if not recorded:
        return None
    payload = json.loads(recorded) if isinstance(recorded, str) else recorded
    return payload if isinstance(payload, dict) else None


def run_folder(info: ValidationInfo, name: str) -> str:
    """Return ``<work_dir>/<name>_r<run:04d>``: one output folder per run in a shared work_dir."""
    header = info.data["lute_config"]
    run = f"{header.run:04d}" if isinstance(header.run, int) else str(header.run or "0")
    return os.path.join(header.work_dir, f"{name}_r{run}")


class IndexCCTBXXFEL(ThirdPartyTask):
    """Indexes and integrates stills with cctbx.xfel's dials.stills_process (MPI)."""

    image = "cctbx"
    aliases = ("CCTBXIndexer",)
    mpi = True
    before = (Tasklet(f"{__name__}:make_output_dirs", ("{{ phil_parameters }}", "{{ phil_file }}")),)
    after = (Tasklet(f"{__name__}:_indexing_summary", ("{{ phil_parameters }}", "{{ phil_file }}")),)

    class Parameters(ThirdPartyParameters):
        """Parameters of ``IndexCCTBXXFEL``; unknown keys are template variables, as upstream."""

        model_config = ConfigDict(extra="allow")
        set_result = False  # upstream's; the output folder is the result all the same (result_from_params)
        template_fields: ClassVar[Tuple[str, ...]] = ("phil_parameters",)

        class PhilParameters(TemplateParameters):
            """Template variables of cctbx_index.phil (a phil path with ``_`` for ``.``)."""

            input_reference_geometry: Optional[str] = param(
                None, "A models.expt with exactly one detector, used instead of the images' own geometry."
            )
            geometry_detector_panel_origin: Optional[Tuple[float, float, float]] = param(
                None, "Override the panel origin (mm)."
            )
            output_output_dir: str = param(
                "", "Folder for the output files. Default: <work_dir>/cctbx_index_r<run> (upstream: work_dir)."
            )
            output_composite_output: bool = param(
                True, "One experiment/reflection file per process (False: one per image, many files)."
            )
            output_logging_dir: str = param("", "Folder for the log files. Default: output_output_dir.")
            dispatch_index: bool = param(True, "Index the images (spot finding must be on).")
            dispatch_refine: bool = param(False, "Refine the experimental models after indexing.")
            dispatch_integrate: bool = param(True, "Integrate the indexed images.")
            mp_method: str = param("mpi", "Parallel method: multiprocessing, sge, lsf, pbs or mpi.")
            spotfinder_lookup_mask: Optional[str] = param(None, "Mask file.")
            spotfinder_threshold_dispersion_gain: Optional[float] = param(
                None, "Flat detector gain multiplying the format's gain (not with a gain map)."
            )
            spotfinder_threshold_dispersion_sigma_bkgnd: float = param(
                6, "Index of dispersion (variance/mean) below which, in sigmas, a pixel is background."
            )
            spotfinder_threshold_dispersion_sigma_strong: float = param(
                3, "Sigmas above the local mean above which a pixel is strong."
            )
            spotfinder_threshold_dispersion_global_threshold: float = param(
                0, "Pixels below this value are background."
            )
            spotfinder_threshold_dispersion_kernel_size: Tuple[int, int] = param(
                (6, 6), "Half-size (nx, ny) of the local box of the mean and variance: (2nx+1) x (2ny+1)."
            )
            spotfinder_filter_min_spot_size: Optional[int] = param(3, "Fewest contiguous pixels of a spot.")
            spotfinder_filter_d_min: Optional[float] = param(None, "High-resolution limit (Å) of spot pixels.")
            indexing_stills_refine_candidates_with_known_symmetry: bool = param(
                False, "Refine the candidate bases in the known symmetry (False: in P1)."
            )
            indexing_stills_refine_all_candidates: bool = param(
                True, "Refine every candidate basis (False: keep the one of the best RMSD)."
            )
            indexing_known_symmetry_space_group: Optional[str] = param(
                None, "Target space group. Default: SimulateStills' for this run, if it ran."
            )
            indexing_known_symmetry_unit_cell: Optional[str] = param(
                None, "Target unit cell 'a b c alpha beta gamma'. Default: SimulateStills' for this run, if it ran."
            )
            integration_background_simple_outlier_plane_n_sigma: int = param(
                10, "Sigmas above the background plane that reject a pixel from the background."
            )
            integration_summation_detector_gain: float = param(
                1.0, "Multiplier of the variances after integration of stills (Leslie 1999)."
            )
            profile_gaussian_rs_centroid_definition: str = param(
                "com", "Centroid of the beam divergence: com (centre of mass) or s1."
            )
            refinement_reflections_outlier_algorithm: Optional[str] = param(
                None, "Outlier rejection algorithm of the refinement (auto: chosen for you)."
            )

        executable: str = param(
            "mpirun",
            "Upstream's MPI starter. Here the kernel's launcher starts the ranks (--ranks, site profile), "
            "so the command starts at cctbx_executable and this value is not run.",
            flag_type="",
        )
        cctbx_executable: str = param("dials.stills_process", "CCTBX indexing program (DIALS).", flag_type="")
        data_spec: Optional[Dict[str, Union[str, float, int]]] = param(
            None, "LCLS data specification (key=value lines), written to in_file before the run.", flag_type=""
        )
        in_file: str = param(
            "",
            "Images: a file, a glob, or LCLS's data specification (written from data_spec). "
            "Default: data_spec's file if given, else SimulateStills' images for this run, "
            "else upstream's <work_dir>/data_<experiment>_<run>.loc.",
            flag_type="",
        )
        phil_file: str = param("", "Settings ('phil') file. Default: <work_dir>/cctbx_index.phil.", flag_type="")
        phil_parameters: Optional[PhilParameters] = param(
            None,
            "Template variables of cctbx_index.phil. Default when phil_file is not given: the defaults "
            "(upstream renders only when they are given; give phil_file alone to keep your own file).",
            flag_type="",
        )
        lute_template_cfg: TemplateConfig = param(
            TemplateConfig(template_name="cctbx_index.phil", output_path=""), "Template of the phil file."
        )

        @model_validator(mode="before")
        @classmethod
        def _render_by_default(cls, data: Any) -> Any:
            # Upstream renders the phil file only from given phil_parameters; a section that names no
            # phil file of its own gets one rendered from the defaults (so `IndexCCTBXXFEL: {}` runs).
            if isinstance(data, dict) and data.get("phil_parameters") is None and not data.get("phil_file"):
                return {**data, "phil_parameters": {}}
            return data

        @field_validator("in_file")
        @classmethod
        def _images(cls, in_file: str, info: ValidationInfo) -> str:
            header = info.data.get("lute_config")
            if in_file or on_worker(info) or header is None:
                return in_file
            spec_file = os.path.join(header.work_dir, f"data_{header.experiment}_{header.run}.loc")
            if info.data.get("data_spec") is not None:
                return spec_file  # upstream's: data_spec is written there
            simulated = simulated_run(info)
            if simulated and simulated.get("images"):
                return str(simulated["images"])
            if os.path.exists(spec_file):
                return spec_file
            raise ValueError(
                f"no images: give in_file or data_spec, or run SimulateStills for this run first (no {spec_file})"
            )

        @field_validator("phil_file")
        @classmethod
        def _phil_path(cls, phil_file: str, info: ValidationInfo) -> str:
            header = info.data.get("lute_config")
            return phil_file or (os.path.join(header.work_dir, "cctbx_index.phil") if header else "")

        @field_validator("phil_parameters")
        @classmethod
        def _phil_from_db(cls, phil: Optional[PhilParameters], info: ValidationInfo) -> Optional[PhilParameters]:
            if phil is None or on_worker(info) or "lute_config" not in info.data:
                return phil
            update: Dict[str, Any] = {}
            if not phil.output_output_dir:
                update["output_output_dir"] = run_folder(info, "cctbx_index")
            if not phil.output_logging_dir:
                update["output_logging_dir"] = update.get("output_output_dir", phil.output_output_dir)
            simulated = simulated_run(info)
            if simulated:
                if phil.indexing_known_symmetry_space_group is None:
                    update["indexing_known_symmetry_space_group"] = str(simulated["space_group"]).replace(" ", "")
                if phil.indexing_known_symmetry_unit_cell is None:
                    update["indexing_known_symmetry_unit_cell"] = " ".join(f"{x:g}" for x in simulated["unit_cell"])
            return phil.model_copy(update=update)

        @field_validator("lute_template_cfg")
        @classmethod
        def _template_output(cls, config: TemplateConfig, info: ValidationInfo) -> TemplateConfig:
            if config.output_path:
                return config
            return config.model_copy(update={"output_path": info.data.get("phil_file", "")})

        @model_validator(mode="after")
        def _renders(self, info: ValidationInfo) -> IndexCCTBXXFEL.Parameters:
            if not on_worker(info):
                try:
                    rendered_files(self)  # a template error is bad input: nothing is launched
                except TemplateError as exc:
                    raise ValueError(str(exc)) from None
            return self

        def extra_files(self) -> List[RenderedFile]:
            """Return upstream's data-spec file (key=value lines) when data_spec is given."""
            if self.data_spec is None:
                return []
            return [RenderedFile(self.in_file, "".join(f"{k}={v}\n" for k, v in self.data_spec.items()))]

        def result_from_params(self) -> Optional[Any]:
            """Return the output folder (what MergeCCTBXXFEL reads), when the phil file is rendered here."""
            return self.phil_parameters.output_output_dir if self.phil_parameters is not None else None

    @classmethod
    def build_argv(cls, params: Any) -> List[str]:
        """Return ``[cctbx_executable, in_file, phil_file]``: the launcher, not ``executable``, starts MPI."""
        assert isinstance(params, IndexCCTBXXFEL.Parameters)
        return [params.cctbx_executable, params.in_file, params.phil_file]
