"""SubmitSMD's parameters on the host: upstream's names and defaults, derived paths, template variables."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, Dict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from lute_kernel.registry import discover, import_tasks_module

TASKS = Path(__file__).resolve().parents[2] / "tasks"
params_module = import_tasks_module(str(TASKS), "_smd_params")
SubmitSMDParameters = params_module.SubmitSMDParameters


def validate(work_dir: Path, header: Any = None, **section: Any) -> Any:
    lute_config = {"experiment": "xppl1001021", "run": 20, "work_dir": str(work_dir), **(header or {})}
    return SubmitSMDParameters.model_validate({"lute_config": lute_config, **section})


def messages(info: pytest.ExceptionInfo[ValidationError]) -> str:
    return "; ".join(e["msg"] for e in info.value.errors())


def test_registered_with_upstreams_managed_task_names() -> None:
    registry = discover([TASKS], entry_points=False)
    for name in ("SubmitSMD", "SmallDataProducer", "SmallDataProducer2"):
        spec = registry.get(name)
        assert spec.name == "SubmitSMD" and spec.cls.image == "psana2" and spec.cls.mpi
    assert "PS_*" in registry.get("SubmitSMD").cls.env


def test_upstream_defaults(work_dir: Path) -> None:
    params = validate(work_dir)
    assert (params.executable, params.p_arg1, params.u, params.m, params.map_by) == (
        "mpirun",
        "python",
        "",
        "mpi4py.run",
        "core",
    )
    assert (params.stn, params.nevents, params.gather_interval, params.config) == (0, 10**9, 25, None)
    assert str(params.url) == "https://pswww.slac.stanford.edu/ws-auth/lgbk" and params.np >= 1
    flags = (
        "norecorder",
        "epicsAll",
        "full",
        "fullSum",
        "default",
        "image",
        "tiff",
        "centerpix",
        "postRuntable",
        "wait",
        "xtcav",
        "noarch",
    )
    assert not any(getattr(params, flag) for flag in flags)
    assert params.producer_parameters is None and params.lute_template_cfg.template_name == "smd_producer_template.py"


def test_derived_paths_and_the_result(work_dir: Path) -> None:
    params = validate(work_dir)
    folder = work_dir / "hdf5" / "smalldata"
    assert (params.experiment, params.run, params.run_number) == ("xppl1001021", "20", 20)
    assert params.directory == str(folder)
    assert params.out_file == str(folder / "xppl1001021_Run0020.h5") == params.result_from_params()
    assert params.lute_template_cfg.output_path == str(folder / "prod_config_xpp_r0020.py")
    assert (
        params.producer == "/sdf/data/lcls/ds/xpp/xppl1001021/results/smalldata_tools/lcls1_producers/smd_producer.py"
    )
    lcls2 = validate(work_dir, header={"experiment": "mfx100848724"})
    assert lcls2.producer.endswith("/mfx/mfx100848724/results/smalldata_tools/lcls2_producers/smd_producer.py")
    named = validate(work_dir, config="mine.py", directory="/data/out")
    assert named.lute_template_cfg.output_path == "/data/out/prod_config_mine.py"
    assert named.out_file == "/data/out/xppl1001021_Run0020.h5"


def test_run_and_experiment_in_the_section_win_and_may_be_numbers(work_dir: Path) -> None:
    params = validate(work_dir, run=99, experiment="mfxl1013621")
    assert (params.run, params.experiment) == ("99", "mfxl1013621")
    assert params.out_file.endswith("/mfxl1013621_Run0099.h5")
    assert validate(work_dir, header={"run": ""}, run="12_2026-12-01T10:00:00").run_number == 12  # $RUN_NUM's form


def test_a_run_number_and_an_experiment_are_needed(work_dir: Path) -> None:
    with pytest.raises(ValidationError) as no_run:
        validate(work_dir, header={"run": ""})
    assert "SubmitSMD needs a run number" in messages(no_run)
    with pytest.raises(ValidationError) as no_experiment:
        validate(work_dir, header={"experiment": ""})
    assert "SubmitSMD needs an experiment" in messages(no_experiment)


ROIS = {"epix_1": {"ROIs": [[[0, 10], [0, 10]]], "writeArea": True}}


def test_template_variables_at_the_top_level_join_producer_parameters(work_dir: Path) -> None:
    params = validate(work_dir, detnames=["epix10k2M"], getROIs=ROIS, producer_parameters={"epicsPV": ["ccm_E"]})
    found = params.producer_parameters
    assert found.detnames == ["epix10k2M"] and found.epicsPV == ["ccm_E"]
    assert found.getROIs["epix_1"].ROIs == [[[0, 10], [0, 10]]] and found.getROIs["epix_1"].thresADU is None
    assert params.template_values()["getROIs"]["epix_1"]["writeArea"] is True
    assert "detnames" not in params.task_values()  # recorded once, under producer_parameters
    with pytest.raises(ValidationError) as clash:
        validate(work_dir, getROIs=ROIS, producer_parameters={"getROIs": ROIS})
    assert "getROIs given both at the top level and in producer_parameters" in messages(clash)


def test_upstream_settings_the_producer_does_not_implement_are_refused(work_dir: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        validate(work_dir, getPhotonsParams={"jungfrau1M": {"ADU_per_photon": 9.5}})  # upstream's example spelling
    assert "getPhotonParams: not implemented by lute-kernel's psana2 producer" in messages(refused)
    assert validate(work_dir, detSumAlgos={"jungfrau": ["calib_max"]}).producer_parameters.detSumAlgos
    with pytest.raises(ValidationError) as algo:
        validate(work_dir, detSumAlgos={"jungfrau": ["calib", "square"]})
    assert "detSumAlgos.jungfrau: square" in messages(algo)


def test_nested_settings_are_typed(work_dir: Path) -> None:
    with pytest.raises(ValidationError) as bad:
        validate(
            work_dir, getAzIntPyFAIParams={"Rayonix": {"ai_kwargs": {"dist": 1, "poni1": "960 * 1.76e-4", "poni2": 0}}}
        )
    assert any(e["loc"][-1] == "poni1" for e in bad.value.errors())
    with pytest.raises(ValidationError):
        validate(work_dir, getROIs={"epix_1": {"ROIs": [[[0, 10]]], "writeAreaa": True}})


def test_upstream_template_names_are_accepted_others_are_not(work_dir: Path) -> None:
    for name in ("smd1_prod_config_template.py", "smd2_prod_config_template.py"):
        cfg = validate(work_dir, lute_template_cfg={"template_name": name, "output_path": "/x/prod_config_mfx.py"})
        assert cfg.lute_template_cfg.output_path == "/x/prod_config_mfx.py"
    with pytest.raises(ValidationError) as other:
        validate(work_dir, lute_template_cfg={"template_name": "cheetah_template.yaml", "output_path": ""})
    assert "lute_template_cfg.template_name: one of" in messages(other)


def test_the_url_must_be_an_http_url(work_dir: Path) -> None:
    with pytest.raises(ValidationError):
        validate(work_dir, url="not a url")


FIELDS = set(SubmitSMDParameters.model_fields) | set(params_module.TEMPLATE_VARIABLES)


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=12).filter(lambda k: k not in FIELDS))
def test_any_other_key_is_an_unknown_parameter(tmp_path_factory: pytest.TempPathFactory, key: str) -> None:
    work_dir = tmp_path_factory.mktemp("w")
    section: Dict[str, Any] = {key: 1}
    with pytest.raises(ValidationError) as unknown:
        validate(work_dir, **section)
    assert [e["type"] for e in unknown.value.errors()] == ["extra_forbidden"]
