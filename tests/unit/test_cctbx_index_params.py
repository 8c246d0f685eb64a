"""IndexCCTBXXFEL on the host: parameters, DB-derived defaults, exact argv and the rendered phil file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml
from conftest import UPSTREAM_CONFIGS
from pydantic import ValidationError

from lute_kernel.db import RunRecord, record_run
from lute_kernel.registry import discover
from lute_kernel.templates import RenderedFile, rendered_files

REPO = Path(__file__).resolve().parents[2]
HEADER = {"experiment": "mfxp1001", "run": 12}
CELL = [34.123, 34.874, 43.683, 90.0, 90.0, 90.0]

DEFAULT_PHIL = """output {{
  output_dir = {out}
  composite_output = True
  logging_dir = {out}
}}
dispatch {{
  index = True
  refine = False
  integrate = True
}}
mp {{
  method = mpi
}}
spotfinder {{
  lookup {{
    mask = None
  }}
  threshold {{
    dispersion {{
      gain = None
      sigma_background = 6
      sigma_strong = 3
      global_threshold = 0
      kernel_size = (6, 6)
    }}
  }}
  filter {{
    min_spot_size = 3
    d_min = None
  }}
}}
indexing {{
  stills {{
    refine_candidates_with_known_symmetry = False
    refine_all_candidates = True
  }}
  known_symmetry {{
    space_group = {space_group}
    unit_cell = {unit_cell}
  }}
}}
integration {{
  background {{
    simple {{
      outlier {{
        plane {{
          n_sigma = 10
        }}
      }}
    }}
  }}
  summation {{
    detector_gain = 1.0
  }}
}}
profile {{
  gaussian_rs {{
    centroid_definition = com
  }}
}}
refinement {{
  reflections {{
    outlier {{
      algorithm = None
    }}
  }}
}}
"""


@pytest.fixture(scope="module")
def task_cls() -> Any:
    return discover([REPO / "tasks"], entry_points=False).get("IndexCCTBXXFEL").cls


def validate(task_cls: Any, work_dir: Path, **section: Any) -> Any:
    return task_cls.Parameters.model_validate({"lute_config": {**HEADER, "work_dir": str(work_dir)}, **section})


def simulated(work_dir: Path, run: int = 12) -> Dict[str, Any]:
    payload = {
        "images": f"{work_dir}/stills_r{run:04d}/still_*.cbf",
        "space_group": "P 21 21 21",
        "unit_cell": CELL,
        "truth_mtz": f"{work_dir}/stills_r{run:04d}/still_truth.mtz",
        "pdb_file": "/usr/lib/python3/dist-packages/mmtbx/regression/pdbs/Fe_1brf_snip_reduced.pdb",
    }
    record_run(
        work_dir,
        RunRecord(
            task_name="SimulateStills",
            header={**HEADER, "run": run},
            parameters={"n_images": 50},
            task_status="COMPLETED",
            summary="",
            payload=payload,
        ),
    )
    return payload


def test_declared_as_upstreams_mpi_task_of_the_cctbx_image(task_cls: Any) -> None:
    assert (task_cls.image, task_cls.mpi, task_cls.kind) == ("cctbx", True, "binary")
    assert task_cls.aliases == ("CCTBXIndexer",)
    assert registry_alias("CCTBXIndexer") == "IndexCCTBXXFEL"


def registry_alias(name: str) -> str:
    return discover([REPO / "tasks"], entry_points=False).get(name).name


def test_given_images_and_defaults_argv_and_phil(task_cls: Any, work_dir: Path) -> None:
    params = validate(task_cls, work_dir, in_file="/data/run12/*.cbf")
    phil = str(work_dir / "cctbx_index.phil")
    assert task_cls.build_argv(params) == ["dials.stills_process", "/data/run12/*.cbf", phil]
    out = str(work_dir / "cctbx_index_r0012")
    expected = DEFAULT_PHIL.format(out=out, space_group="None", unit_cell="None")
    assert rendered_files(params) == [RenderedFile(phil, expected)]
    assert params.result_from_params() == out  # MergeCCTBXXFEL's input_path


def test_the_images_and_symmetry_come_from_simulatestills_of_the_run(task_cls: Any, work_dir: Path) -> None:
    payload = simulated(work_dir)
    params = validate(task_cls, work_dir)  # `IndexCCTBXXFEL: {}`
    assert params.in_file == payload["images"]
    assert params.phil_parameters.indexing_known_symmetry_space_group == "P212121"
    assert params.phil_parameters.indexing_known_symmetry_unit_cell == "34.123 34.874 43.683 90 90 90"
    text = rendered_files(params)[0].text
    out = str(work_dir / "cctbx_index_r0012")
    assert text == DEFAULT_PHIL.format(out=out, space_group="P212121", unit_cell="34.123 34.874 43.683 90 90 90")


def test_given_symmetry_and_images_win_over_the_db(task_cls: Any, work_dir: Path) -> None:
    simulated(work_dir)
    phil = {
        "indexing_known_symmetry_space_group": "P 41 21 2",
        "indexing_known_symmetry_unit_cell": "140 140 140 90 90 90",
    }
    params = validate(task_cls, work_dir, in_file="/mine/*.h5", phil_parameters=phil)
    assert params.in_file == "/mine/*.h5"
    assert "space_group = P 41 21 2\n    unit_cell = 140 140 140 90 90 90\n" in rendered_files(params)[0].text


def test_no_images_anywhere_is_an_error_naming_the_ways_to_give_them(task_cls: Any, work_dir: Path) -> None:
    with pytest.raises(ValidationError, match="give in_file or data_spec, or run SimulateStills") as info:
        validate(task_cls, work_dir)
    assert f"no {work_dir}/data_mfxp1001_12.loc" in str(info.value)


def test_an_existing_upstream_data_spec_file_is_used(task_cls: Any, work_dir: Path) -> None:
    spec = work_dir / "data_mfxp1001_12.loc"
    spec.write_text("experiment=mfxp1001\n")
    assert validate(task_cls, work_dir).in_file == str(spec)


def test_own_phil_file_alone_is_not_rewritten(task_cls: Any, work_dir: Path) -> None:
    # Upstream: "comment out phil_parameters to avoid re-writing .phil".
    params = validate(task_cls, work_dir, in_file="/d/*.cbf", phil_file="/mine/index.phil")
    assert params.phil_parameters is None and rendered_files(params) == []
    assert task_cls.build_argv(params) == ["dials.stills_process", "/d/*.cbf", "/mine/index.phil"]
    assert params.lute_template_cfg.output_path == "/mine/index.phil"


def test_upstream_executables_are_kept_but_the_launcher_starts_mpi(task_cls: Any, work_dir: Path) -> None:
    section = {
        "executable": "/sdf/group/lcls/ds/tools/cctbx/conda_base/bin/mpirun",
        "cctbx_executable": "/sdf/group/lcls/ds/tools/cctbx/build/bin/dials.stills_process",
        "in_file": "/d/a.cbf",
        "phil_file": "/w/p.phil",
        "phil_parameters": {"output_output_dir": "/w/out", "output_logging_dir": "/w/logs"},
    }
    params = validate(task_cls, work_dir, **section)
    assert task_cls.build_argv(params) == [section["cctbx_executable"], "/d/a.cbf", "/w/p.phil"]
    text = rendered_files(params)[0].text
    assert "  output_dir = /w/out\n  composite_output = True\n  logging_dir = /w/logs\n" in text


def test_optional_geometry_blocks_render_only_when_given(task_cls: Any, work_dir: Path) -> None:
    phil = {"input_reference_geometry": "/g/ref.expt", "geometry_detector_panel_origin": [1, 2.5, -100]}
    text = rendered_files(validate(task_cls, work_dir, in_file="/d", phil_parameters=phil))[0].text
    assert text.startswith(
        "input {\n  reference_geometry = /g/ref.expt\n}\n"
        "geometry {\n  detector {\n    panel {\n      origin = (1.0, 2.5, -100.0)\n    }\n  }\n}\noutput {\n"
    )


@pytest.mark.skipif(not (UPSTREAM_CONFIGS / "test.yaml").is_file(), reason="no shared/upstream-configs")
def test_upstream_test_yaml_section_validates_unchanged(task_cls: Any, work_dir: Path) -> None:
    sections = list(yaml.safe_load_all((UPSTREAM_CONFIGS / "test.yaml").read_text()))[1]
    section = dict(sections["IndexCCTBXXFEL"])
    section["data_spec"] = {**section["data_spec"], "experiment": "mfxp1001", "run": 12}  # substituted header values
    params = validate(task_cls, work_dir, **section)
    spec = str(work_dir / "data_mfxp1001_12.loc")
    phil = str(work_dir / "cctbx_index.phil")
    assert task_cls.build_argv(params) == ["dials.stills_process", spec, phil]
    files = rendered_files(params)
    assert [f.path for f in files] == [phil, spec]
    assert files[1].text == (
        "experiment=mfxp1001\nrun=12\ndetector_address=Rayonix\nwavelength_offset=-0.004414643434400234\n"
        "spectrum_eV_per_pixel=0.07523816551020232\nspectrum_eV_offset=9723.778479641995\nrayonix.bin_size=4\n"
    )
    text = files[0].text
    for line in ("gain = 1.6", "sigma_background = 2.0", "sigma_strong = 2.0", "d_min = 3.0", "refine = True"):
        assert f"{line}\n" in text
    assert "refine_candidates_with_known_symmetry = True\n    refine_all_candidates = False\n" in text
    # Upstream's unknown keys (mp_mpi_method, …_global_thresh) are template variables, not errors.
    assert params.phil_parameters.model_extra == {
        "mp_mpi_method": "mpi",
        "spotfinder_threshold_dispersion_global_thresh": 10,
    }


def test_bad_types_are_field_errors(task_cls: Any, work_dir: Path) -> None:
    with pytest.raises(ValidationError) as info:
        validate(task_cls, work_dir, in_file="/d", phil_parameters={"dispatch_index": "maybe"})
    assert info.value.errors()[0]["loc"] == ("phil_parameters", "dispatch_index")
    with pytest.raises(ValidationError):
        validate(task_cls, work_dir, in_file="/d", phil_parameters={"spotfinder_threshold_dispersion_kernel_size": [6]})


def test_the_recorded_parameters_are_json(task_cls: Any, work_dir: Path) -> None:
    values = validate(task_cls, work_dir, in_file="/d/*.cbf").task_values()
    assert values["phil_parameters"]["spotfinder_threshold_dispersion_kernel_size"] == [6, 6]
    assert values["lute_template_cfg"] == {"template_name": "cctbx_index.phil", "output_path": values["phil_file"]}
    json.dumps(values)


def test_the_before_tasklet_makes_the_output_folders(task_cls: Any, tmp_path: Path) -> None:
    make_output_dirs = vars(__import__(task_cls.__module__, fromlist=["make_output_dirs"]))["make_output_dirs"]
    out, logs = tmp_path / "out", tmp_path / "logs"
    assert make_output_dirs({"output_output_dir": str(out), "output_logging_dir": str(logs)}, "") == {
        "output_dirs": f"{logs},{out}"
    }
    assert out.is_dir() and logs.is_dir()
    own = tmp_path / "own.phil"
    own.write_text(f"output {{\n  output_dir = {tmp_path}/mine\n  logging_dir = None\n}}\n")
    assert make_output_dirs(None, str(own)) == {"output_dirs": f"{tmp_path}/mine"}  # the user's phil file
    assert make_output_dirs(None, str(tmp_path / "absent.phil")) == {}
    assert [t.function.rsplit(":", 1)[1] for t in task_cls.before] == ["make_output_dirs"]
    assert [t.function.rsplit(":", 1)[1] for t in task_cls.after] == ["_indexing_summary"]
