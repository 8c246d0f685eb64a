"""MergeCCTBXXFEL on the host: parameters, DB-derived defaults, exact argv and the rendered phil file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import UPSTREAM_CONFIGS
from pydantic import ValidationError
from test_cctbx_index_params import HEADER, simulated

from lute_kernel.db import RunRecord, record_run
from lute_kernel.registry import discover
from lute_kernel.templates import RenderedFile, rendered_files

REPO = Path(__file__).resolve().parents[2]
PDB = "/usr/lib/python3/dist-packages/mmtbx/regression/pdbs/Fe_1brf_snip_reduced.pdb"

CHAIN_PHIL = """input {{
  path = {index_dir}
  experiments_suffix = _integrated.expt
  reflections_suffix = _integrated.refl
  parallel_file_load {{
    method = uniform
  }}
}}
filter {{
  algorithm = unit_cell
  unit_cell {{
    algorithm = value
    cluster {{
      covariance {{
        file = None
        component = 0
        mahalanobis = 5.0
      }}
    }}
    value {{
      target_unit_cell = 34.123 34.874 43.683 90 90 90
      target_space_group = P212121
      relative_length_tolerance = 0.03
      absolute_angle_tolerance = 1.0
    }}
  }}
  outlier {{
    min_corr = -1.0
  }}
}}
select {{
  algorithm = significance_filter
  significance_filter {{
    sigma = 0.1
  }}
}}
scaling {{
  model = {pdb}
  resolution_scalar = 0.993420862158964
}}
postrefinement {{
  enable = True
  algorithm = rs
}}
merging {{
  d_min = 3
  merge_anomalous = False
  set_average_unit_cell = True
  error {{
    model = ev11
  }}
}}
statistics {{
  n_bins = 20
  report_ML = True
  cciso {{
    mtz_file = {truth}
    mtz_column_F = F
  }}
}}
output {{
  prefix = iobs
  output_dir = {out}
  tmp_dir = None
  do_timing = True
  log_level = 0
  save_experiments_and_reflections = True
}}
parallel {{
  a2a = 1
}}
"""


@pytest.fixture(scope="module")
def task_cls() -> Any:
    return discover([REPO / "tasks"], entry_points=False).get("MergeCCTBXXFEL").cls


def validate(task_cls: Any, work_dir: Path, **section: Any) -> Any:
    return task_cls.Parameters.model_validate({"lute_config": {**HEADER, "work_dir": str(work_dir)}, **section})


def indexed(work_dir: Path, out: str, run: int = 12) -> None:
    record_run(
        work_dir,
        RunRecord(
            task_name="IndexCCTBXXFEL",
            header={**HEADER, "run": run},
            parameters={},
            task_status="COMPLETED",
            summary="",
            payload=out,
        ),
    )


def test_declared_as_upstreams_mpi_task_of_the_cctbx_image(task_cls: Any) -> None:
    assert (task_cls.image, task_cls.mpi, task_cls.aliases) == ("cctbx", True, ("CCTBXMerger",))


def test_the_whole_chain_from_the_db_renders_exactly(task_cls: Any, work_dir: Path) -> None:
    payload = simulated(work_dir)
    indexed(work_dir, "/w/cctbx_index_r0012")
    params = validate(task_cls, work_dir)  # `MergeCCTBXXFEL: {}`
    phil = str(work_dir / "cctbx_merge.phil")
    assert task_cls.build_argv(params) == ["cctbx.xfel.merge", phil]
    out = str(work_dir / "cctbx_merge_r0012")
    expected = CHAIN_PHIL.format(index_dir="/w/cctbx_index_r0012", pdb=PDB, truth=payload["truth_mtz"], out=out)
    assert rendered_files(params) == [RenderedFile(phil, expected)]
    assert params.result_from_params() == f"{out}/iobs_all.mtz"


def test_without_an_indexing_row_input_path_is_required(task_cls: Any, work_dir: Path) -> None:
    with pytest.raises(ValidationError, match="no input_path given and no valid IndexCCTBXXFEL result"):
        validate(task_cls, work_dir)


def test_given_values_win_and_upstream_defaults_stay_without_simulation(task_cls: Any, work_dir: Path) -> None:
    params = validate(task_cls, work_dir, phil_parameters={"input_path": "/d/idx", "merging_d_min": 1.8})
    text = rendered_files(params)[0].text
    assert "    algorithm = cluster\n" in text and "value {" not in text  # upstream's filter default
    assert "  model = None\n" in text and "    mtz_file = None\n" in text  # empty paths render as phil's None
    assert "  d_min = 1.8\n" in text


def test_the_cluster_filter_is_kept_when_a_covariance_file_is_given(task_cls: Any, work_dir: Path) -> None:
    simulated(work_dir)
    phil = {"input_path": "/d", "filter_unit_cell_cluster_covariance_file": "/c/cov.pickle"}
    text = rendered_files(validate(task_cls, work_dir, phil_parameters=phil))[0].text
    assert "    algorithm = cluster\n" in text and "        file = /c/cov.pickle\n" in text and "value {" not in text


def test_an_explicit_unit_cell_algorithm_is_respected(task_cls: Any, work_dir: Path) -> None:
    simulated(work_dir)
    phil = {"input_path": "/d", "filter_unit_cell_algorithm": "range", "scaling_model": "/m/ref.mtz"}
    text = rendered_files(validate(task_cls, work_dir, phil_parameters=phil))[0].text
    assert "    algorithm = range\n" in text and "value {" not in text and "  model = /m/ref.mtz\n" in text


def test_optional_blocks_render_from_extra_keys(task_cls: Any, work_dir: Path) -> None:
    phil = {
        "input_path": "/d",
        "scaling_algorithm": "mark1",
        "scaling_unit_cell": "34 35 44 90 90 90",
        "scaling_space_group": "P212121",
        "dispatch_step_list": "input balance model_scaling modify filter scale group merge",
    }
    text = rendered_files(validate(task_cls, work_dir, phil_parameters=phil))[0].text
    assert "  algorithm = mark1\n  unit_cell = 34 35 44 90 90 90\n  space_group = P212121\n}\n" in text
    assert text.endswith(
        "parallel {\n  a2a = 1\n}\n"
        "dispatch {\n  step_list = input balance model_scaling modify filter scale group merge\n}\n"
    )


def test_own_phil_file_alone_is_not_rewritten(task_cls: Any, work_dir: Path) -> None:
    params = validate(
        task_cls, work_dir, phil_file="/mine/merge.phil", cctbx_executable="/opt/cctbx/bin/cctbx.xfel.merge"
    )
    assert rendered_files(params) == [] and params.result_from_params() is None
    assert task_cls.build_argv(params) == ["/opt/cctbx/bin/cctbx.xfel.merge", "/mine/merge.phil"]


@pytest.mark.skipif(not (UPSTREAM_CONFIGS / "test.yaml").is_file(), reason="no shared/upstream-configs")
def test_upstream_test_yaml_section_validates_unchanged(task_cls: Any, work_dir: Path) -> None:
    sections = list(yaml.safe_load_all((UPSTREAM_CONFIGS / "test.yaml").read_text()))[1]
    params = validate(task_cls, work_dir, **sections["MergeCCTBXXFEL"])
    phil = params.phil_parameters
    assert (phil.input_path, phil.merging_d_min, phil.output_log_level) == ("path/to/input", 3, 1)  # log_level: true
    text = rendered_files(params)[0].text
    assert "  path = path/to/input\n" in text and "        file = ...\n" in text
    assert f"  output_dir = {work_dir}/cctbx_merge_r0012\n" in text


def test_bad_values_are_field_errors(task_cls: Any, work_dir: Path) -> None:
    with pytest.raises(ValidationError) as info:
        validate(task_cls, work_dir, phil_parameters={"input_path": "/d", "merging_d_min": "high"})
    assert info.value.errors()[0]["loc"][:2] == ("phil_parameters", "merging_d_min")
