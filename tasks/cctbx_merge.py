"""MergeCCTBXXFEL: scaling, post-refinement and merging of integrated stills with ``cctbx.xfel.merge``.

Upstream LUTE's Task (``lute/io/models/sfx_merge.py``, managed Task ``CCTBXMerger``): its names,
fields, defaults and template (``config/templates/cctbx_merge.phil``, rendered by the kernel from
``phil_parameters`` before launch). An MPI Task like IndexCCTBXXFEL: the kernel's launcher starts the
ranks around ``cctbx.xfel.merge <phil_file>`` in the ``cctbx`` image. Completeness, multiplicity,
CC1/2 and the CC against the reference go into the summary (``after`` tasklet); the merged MTZ
(``<output_dir>/<prefix>_all.mtz``) is the result.

What comes from the DB when the section leaves it out (the newest valid row of the same run): the
integrated stills (``input_path``: IndexCCTBXXFEL's output folder), and from ``SimulateStills`` the
scaling model (its PDB), the reference of the CC (its truth MTZ), and the cell and space group of
the unit-cell filter. The filter's default is ``value`` around that cell: upstream's ``cluster``
needs a covariance file and the ``uc_metrics`` package, which Debian does not ship.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Union

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

from lute_kernel.parameters import TemplateParameters, ThirdPartyParameters, on_worker, param, recorded_value
from lute_kernel.task import ThirdPartyTask
from lute_kernel.tasklets import Tasklet
from lute_kernel.templates import TemplateConfig, TemplateError, rendered_files

from ._cctbx_logs import merging_summary as _merging_summary  # noqa: F401  (the tasklet below)
from .cctbx_index import make_output_dirs, run_folder, simulated_run


class MergeCCTBXXFEL(ThirdPartyTask):
    """Merges integrated stills with cctbx.xfel.merge (MPI)."""

    image = "cctbx"
    aliases = ("CCTBXMerger",)
    mpi = True
    before = (Tasklet(f"{make_output_dirs.__module__}:make_output_dirs", ("{{ phil_parameters }}", "{{ phil_file }}")),)
    after = (Tasklet(f"{__name__}:_merging_summary", ("{{ phil_parameters }}", "{{ phil_file }}")),)

    class Parameters(ThirdPartyParameters):
        """Parameters of ``MergeCCTBXXFEL``; unknown keys are template variables, as upstream."""

        model_config = ConfigDict(extra="allow")
        set_result = False  # upstream's; the merged MTZ is the result all the same (result_from_params)
        template_fields: ClassVar[Tuple[str, ...]] = ("phil_parameters",)

        class PhilParameters(TemplateParameters):
            """Template variables of cctbx_merge.phil (a phil path with ``_`` for ``.``)."""

            input_path: str = param("", "Folder(s) of integrated stills. Default: IndexCCTBXXFEL's output.")
            input_experiments_suffix: str = param("_integrated.expt", "Suffix of the experiment files.")
            input_reflections_suffix: str = param("_integrated.refl", "Suffix of the reflection files.")
            input_parallel_file_load_method: str = param(
                "uniform", "How ranks share the files: uniform or node_memory."
            )
            filter_algorithm: str = param("unit_cell", "Filter: n_obs, reindex, resolution, unit_cell or report.")
            filter_unit_cell_algorithm: str = param(
                "cluster",
                "Unit-cell filter: range, value or cluster. Not given, and no covariance file: value, "
                "around SimulateStills' cell when it ran for this run.",
            )
            filter_unit_cell_cluster_covariance_file: str = param("", "Covariance file of the cluster filter.")
            filter_unit_cell_cluster_covariance_component: int = param(0, "Component of the covariance model.")
            filter_unit_cell_cluster_covariance_mahalanobis: float = param(5.0, "Mahalanobis-distance cut-off.")
            filter_outlier_min_corr: float = param(-1.0, "Smallest correlation of an image with the reference.")
            select_algorithm: str = param("significance_filter", "Reflection selection: panel, cspad_sensor, …")
            select_significance_filter_sigma: float = param(0.1, "I/sigma cut-off of the significance filter.")
            scaling_model: str = param("", "Reference model (PDB or MTZ) for scaling. Default: SimulateStills' PDB.")
            scaling_resolution_scalar: float = param(0.993420862158964, "Resolution scalar of the scaling model.")
            postrefinement_enable: bool = param(True, "Post-refine the partialities.")
            postrefinement_algorithm: str = param("rs", "Post-refinement model: rs, rs2, rs_hybrid, eta_deff.")
            merging_d_min: Union[int, float] = param(
                3, "High-resolution limit (Å) of the merge (upstream: int; a float is accepted too)."
            )
            merging_merge_anomalous: bool = param(False, "Merge Friedel mates.")
            merging_set_average_unit_cell: bool = param(True, "Merge in the average unit cell.")
            merging_error_model: str = param("ev11", "Error model: ha14, ev11, mm24, errors_from_sample_residuals.")
            statistics_n_bins: int = param(20, "Resolution bins of the statistics.")
            statistics_report_ML: bool = param(True, "Report the maximum-likelihood mosaicity and domain size.")
            statistics_cciso_mtz_file: str = param(
                "", "Reference MTZ of the CC 'iso' statistics. Default: SimulateStills' truth MTZ."
            )
            statistics_cciso_mtz_column_F: str = param("F", "Amplitude column of the reference MTZ.")
            output_prefix: str = param("", "Prefix of the output files (empty: cctbx's 'iobs').")
            output_output_dir: str = param(
                "", "Output folder. Default: <work_dir>/cctbx_merge_r<run> (upstream: the current folder)."
            )
            output_tmp_dir: str = param("", "Folder of temporary files (empty: cctbx's default).")
            output_do_timing: bool = param(True, "Log the time of each step.")
            output_log_level: int = param(0, "Log level (0: everything).")
            output_save_experiments_and_reflections: bool = param(True, "Also write the merged experiments.")
            parallel_a2a: int = param(1, "Slices of each chunk in the all-to-all exchange (more: less memory).")

        executable: str = param(
            "mpirun",
            "Upstream's MPI starter. Here the kernel's launcher starts the ranks (--ranks, site profile), "
            "so the command starts at cctbx_executable and this value is not run.",
            flag_type="",
        )
        cctbx_executable: str = param("cctbx.xfel.merge", "CCTBX merge program.", flag_type="")
        phil_file: str = param("", "Settings ('phil') file. Default: <work_dir>/cctbx_merge.phil.", flag_type="")
        phil_parameters: Optional[PhilParameters] = param(
            None,
            "Template variables of cctbx_merge.phil. Default when phil_file is not given: the defaults "
            "(upstream renders only when they are given; give phil_file alone to keep your own file).",
            flag_type="",
        )
        lute_template_cfg: TemplateConfig = param(
            TemplateConfig(template_name="cctbx_merge.phil", output_path=""), "Template of the phil file."
        )

        @model_validator(mode="before")
        @classmethod
        def _render_by_default(cls, data: Any) -> Any:
            if isinstance(data, dict) and data.get("phil_parameters") is None and not data.get("phil_file"):
                return {**data, "phil_parameters": {}}
            return data

        @field_validator("phil_file")
        @classmethod
        def _phil_path(cls, phil_file: str, info: ValidationInfo) -> str:
            header = info.data.get("lute_config")
            return phil_file or (os.path.join(header.work_dir, "cctbx_merge.phil") if header else "")

        @field_validator("phil_parameters")
        @classmethod
        def _phil_from_db(cls, phil: Optional[PhilParameters], info: ValidationInfo) -> Optional[PhilParameters]:
            if phil is None or on_worker(info) or "lute_config" not in info.data:
                return phil
            update: Dict[str, Any] = {}
            if not phil.output_output_dir:
                update["output_output_dir"] = run_folder(info, "cctbx_merge")
            if not phil.input_path:
                indexed = recorded_value(info, "IndexCCTBXXFEL", "result.payload")
                if not indexed:
                    raise ValueError("no input_path given and no valid IndexCCTBXXFEL result recorded for this run")
                update["input_path"] = str(indexed)
            simulated = simulated_run(info)
            if simulated:
                update.update(_from_simulation(phil, simulated))
            return phil.model_copy(update=update)

        @field_validator("lute_template_cfg")
        @classmethod
        def _template_output(cls, config: TemplateConfig, info: ValidationInfo) -> TemplateConfig:
            if config.output_path:
                return config
            return config.model_copy(update={"output_path": info.data.get("phil_file", "")})

        @model_validator(mode="after")
        def _renders(self, info: ValidationInfo) -> MergeCCTBXXFEL.Parameters:
            if not on_worker(info):
                try:
                    rendered_files(self)  # a template error is bad input: nothing is launched
                except TemplateError as exc:
                    raise ValueError(str(exc)) from None
            return self

        def result_from_params(self) -> Optional[Any]:
            """Return the merged MTZ (all images), when the phil file is rendered here."""
            phil = self.phil_parameters
            if phil is None:
                return None
            return os.path.join(phil.output_output_dir, f"{phil.output_prefix or 'iobs'}_all.mtz")

    @classmethod
    def build_argv(cls, params: Any) -> List[str]:
        """Return ``[cctbx_executable, phil_file]``: the launcher, not ``executable``, starts MPI."""
        assert isinstance(params, MergeCCTBXXFEL.Parameters)
        return [params.cctbx_executable, params.phil_file]


def _from_simulation(phil: BaseModel, simulated: Dict[str, Any]) -> Dict[str, Any]:
    """Defaults from SimulateStills' payload for what the section did not set."""
    given = phil.model_fields_set | set(phil.model_extra or {})
    update: Dict[str, Any] = {}
    if "scaling_model" not in given and simulated.get("pdb_file"):
        update["scaling_model"] = simulated["pdb_file"]
    if "statistics_cciso_mtz_file" not in given and simulated.get("truth_mtz"):
        update["statistics_cciso_mtz_file"] = simulated["truth_mtz"]
    uses_cluster = "filter_unit_cell_algorithm" in given or phil.filter_unit_cell_cluster_covariance_file  # type: ignore[attr-defined]
    if not uses_cluster and simulated.get("unit_cell"):
        update["filter_unit_cell_algorithm"] = "value"
        cell = " ".join(f"{x:g}" for x in simulated["unit_cell"])
        extra = {
            "filter_unit_cell_value_target_unit_cell": cell,
            "filter_unit_cell_value_target_space_group": str(simulated["space_group"]).replace(" ", ""),
            "filter_unit_cell_value_relative_length_tolerance": 0.03,
            "filter_unit_cell_value_absolute_angle_tolerance": 1.0,
        }
        update.update({k: v for k, v in extra.items() if k not in given})
    return update
