"""SubmitSMD's producer configuration: jinja2 rendering, Python literals only, the host-side tasklet."""

from __future__ import annotations

import ast
import math
import runpy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lute_kernel.registry import discover, import_tasks_module
from lute_kernel.tasklets import resolve_function, run_tasklets

TASKS = Path(__file__).resolve().parents[2] / "tasks"
smalldata = import_tasks_module(str(TASKS), "smalldata")
SubmitSMD = discover([TASKS], entry_points=False).get("SubmitSMD").cls

SECTION = {
    "detnames": ["epix10k2M"],
    "epicsPV": ["ccm_E", ["XPP:MON:MPZ:07A:POSITIONSET", "lxt_set"]],
    "getROIs": {"epix_2": {"ROIs": [[[0, 60], [0, 30]], [[10, 20], [5, 6]]], "writeArea": True, "thresADU": 2.5}},
    "getAzIntPyFAIParams": {
        "epix10k2M": {
            "pix_size": 3e-4,
            "ai_kwargs": {"dist": 0.05, "poni1": 0.03, "poni2": 0.03},
            "npts": 120,
            "npts_az": 8,
            "int_units": "q_A^-1",
            "return2d": True,
        }
    },
}


def params(work_dir: Path, **section: Any) -> Any:
    header = {"experiment": "xppl1001021", "run": 20, "work_dir": str(work_dir)}
    return SubmitSMD.Parameters.model_validate({"lute_config": header, **section})


def render(work_dir: Path, **section: Any) -> Path:
    """Run SubmitSMD's 'before' tasklets as the executor does; return the rendered file."""
    validated = params(work_dir, **section)
    [result] = run_tasklets(list(SubmitSMD.before), validated.model_dump(mode="python"))
    assert result == {"producer_config": validated.lute_template_cfg.output_path}
    return Path(validated.lute_template_cfg.output_path)


def test_the_tasklet_is_this_modules_renderer() -> None:
    [tasklet] = SubmitSMD.before
    assert resolve_function(tasklet.function) is smalldata.render_producer_config


def test_the_rendered_configuration_gives_back_what_was_configured(work_dir: Path) -> None:
    path = render(work_dir, **SECTION)
    text = path.read_text()
    assert text.startswith('"""Producer configuration of xppl1001021 run 20, rendered by lute-kernel\'s SubmitSMD.')
    assert f"# Output of this configuration: {work_dir}/hdf5/smalldata/xppl1001021_Run0020.h5" in text
    module = runpy.run_path(str(path))
    assert module["detnames"] == ["epix10k2M"]
    assert module["epicsPV"] == ["ccm_E", ["XPP:MON:MPZ:07A:POSITIONSET", "lxt_set"]]
    assert module["getROIs"]("20") == {
        "epix_2": [
            {"ROI": [[0, 60], [0, 30]], "writeArea": True, "thresADU": 2.5},
            {"ROI": [[10, 20], [5, 6]], "writeArea": True, "thresADU": 2.5},
        ]
    }
    azav = module["getAzIntPyFAIParams"](20)["epix10k2M"]
    assert azav["ai_kwargs"] == {
        "dist": 0.05,
        "poni1": 0.03,
        "poni2": 0.03,
        "rot1": 0.0,
        "rot2": 0.0,
        "rot3": 0.0,
        "pixel1": None,
        "pixel2": None,
        "wavelength": None,
    }
    assert (azav["pix_size"], azav["npts"], azav["npts_az"], azav["int_units"], azav["return2d"]) == (
        3e-4,
        120,
        8,
        "q_A^-1",
        True,
    )


def test_without_producer_parameters_the_configuration_is_empty(work_dir: Path) -> None:
    module = runpy.run_path(str(render(work_dir)))
    assert (module["detnames"], module["epicsPV"], module["getROIs"](1), module["getAzIntPyFAIParams"](1)) == (
        [],
        [],
        {},
        {},
    )


def test_a_poni_file_replaces_the_integrator_keywords(work_dir: Path) -> None:
    section = {"getAzIntPyFAIParams": {"Rayonix": {"poni_file": "/calib/r0030.poni"}}}
    azav = runpy.run_path(str(render(work_dir, **section)))["getAzIntPyFAIParams"](30)["Rayonix"]
    assert azav["poni_file"] == "/calib/r0030.poni" and "ai_kwargs" not in azav


def test_its_own_file_is_rewritten_a_foreign_one_never(work_dir: Path) -> None:
    path = render(work_dir, detnames=["a"])
    assert runpy.run_path(str(render(work_dir, detnames=["b"])))["detnames"] == ["b"]
    path.write_text("detectors = ['jungfrau']  # smalldata_tools' own prod_config\n")
    with pytest.raises(FileExistsError, match="was not written by SubmitSMD"):
        render(work_dir, detnames=["c"])
    assert "jungfrau" in path.read_text()


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(JSONISH)
def test_python_literals_round_trip(value: Any) -> None:
    text = smalldata.python_literal(value)
    assert ast.literal_eval(text) == value


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, {1, 2}, object(), b"bytes"])
def test_values_that_are_not_json_like_are_refused(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        smalldata.python_literal({"x": [bad]})


def test_undefined_template_names_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "smd_producer_template.py").write_text("x = {{ nothing_like_this }}\n")
    monkeypatch.setenv("LUTE_TEMPLATES_DIR", str(tmp_path))
    with pytest.raises(Exception, match="nothing_like_this"):
        smalldata.render_template("smd_producer_template.py", {})
