"""The analyzers' parameters: upstream's names and defaults, and smd_path from SubmitSMD's DB row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from lute_kernel.db import RunRecord, record_run
from lute_kernel.parameters import WORKER_CONTEXT
from lute_kernel.registry import discover

TASKS = Path(__file__).resolve().parents[2] / "tasks"
REGISTRY = discover([TASKS], entry_points=False)
XSS = REGISTRY.get("AnalyzeSmallDataXSS").cls.Parameters
XAS = REGISTRY.get("AnalyzeSmallDataXAS").cls.Parameters
XES = REGISTRY.get("AnalyzeSmallDataXES").cls.Parameters


def header(work_dir: Path, run: Any = 20) -> dict:
    return {"experiment": "xppl1001021", "run": run, "work_dir": str(work_dir)}


def record_smd(work_dir: Path, run: int, payload: str, status: str = "COMPLETED") -> None:
    full = {
        "title": "t",
        "experiment": "xppl1001021",
        "run": run,
        "date": "2026/12/01",
        "lute_version": 0.1,
        "task_timeout": 600,
        "work_dir": str(work_dir),
    }
    record_run(
        work_dir,
        RunRecord(
            task_name="SubmitSMD",
            header=full,
            parameters={"run": str(run)},
            task_status=status,
            summary="",
            payload=payload,
        ),
    )


def test_registered_with_upstreams_managed_task_names() -> None:
    for name, alias in (
        ("AnalyzeSmallDataXSS", "SmallDataXSSAnalyzer"),
        ("AnalyzeSmallDataXAS", "SmallDataXASAnalyzer"),
        ("AnalyzeSmallDataXES", "SmallDataXESAnalyzer"),
    ):
        spec = REGISTRY.get(alias)
        assert spec.name == name and spec.cls.image == "psana2" and spec.cls.mpi


def test_defaults_are_upstreams(work_dir: Path) -> None:
    params = XSS.model_validate({"lute_config": header(work_dir), "smd_path": "/d/f.h5", "ipm_var": "ipm5/sum"})
    assert (params.xss_detname, params.scan_var, params.xss_event_codes) == (None, None, None)
    assert (params.thresholds.min_Iscat, params.thresholds.min_ipm) == (10.0, 1000.0)
    xes = XES.model_validate(
        {"lute_config": header(work_dir), "smd_path": "/d/f.h5", "ipm_var": "i", "xes_detname": "e"}
    )
    assert (xes.invert_xes_axes, xes.rot_angle, xes.batch_size) == (False, None, 0)
    xas = XAS.model_validate(
        {
            "lute_config": header(work_dir),
            "smd_path": "/d/f.h5",
            "ipm_var": "i",
            "xas_detname": "e",
            "ccm": "epics/ccm_E",
        }
    )
    assert (xas.ccm_set, xas.element) == (None, None)
    assert params.figure_prefix == "/d/f"


def test_required_parameters(work_dir: Path) -> None:
    for model, missing in (
        (XSS, {"ipm_var"}),
        (XAS, {"ipm_var", "xas_detname", "ccm"}),
        (XES, {"ipm_var", "xes_detname"}),
    ):
        with pytest.raises(ValidationError) as info:
            model.model_validate({"lute_config": header(work_dir), "smd_path": "/d/f.h5"})
        assert {e["loc"][0] for e in info.value.errors() if e["type"] == "missing"} == missing


def test_thresholds_also_under_their_newer_name(work_dir: Path) -> None:
    section = {"lute_config": header(work_dir), "smd_path": "/d/f.h5", "ipm_var": "i"}
    newer = XSS.model_validate({**section, "intensity_thresholds": {"min_ipm": 500}})
    assert (newer.thresholds.min_ipm, newer.thresholds.min_Iscat) == (500, 10.0)
    with pytest.raises(ValidationError):
        XSS.model_validate({**section, "thresholds": {"min_ipmm": 500}})


def test_smd_path_defaults_to_submit_smds_payload(work_dir: Path) -> None:
    record_smd(work_dir, 20, "/data/xppl1001021_Run0020.h5")
    record_smd(work_dir, 20, "/data/failed.h5", status="FAILED")  # not valid: never a default
    params = XSS.model_validate({"lute_config": header(work_dir), "ipm_var": "i"})
    assert params.smd_path == "/data/xppl1001021_Run0020.h5"
    given = XSS.model_validate({"lute_config": header(work_dir), "ipm_var": "i", "smd_path": "/mine.h5"})
    assert given.smd_path == "/mine.h5"


def test_without_a_row_the_runs_usual_file_else_upstreams_error(work_dir: Path) -> None:
    section = {"lute_config": header(work_dir), "ipm_var": "i"}
    with pytest.raises(ValidationError) as none:
        XSS.model_validate(section)
    assert "No path provided for hdf5 and cannot auto-determine!" in str(none.value)
    usual = work_dir / "hdf5" / "smalldata" / "xppl1001021_Run0020.h5"
    usual.parent.mkdir(parents=True)
    usual.write_bytes(b"")
    assert XSS.model_validate(section).smd_path == str(usual)


def test_the_worker_keeps_what_the_host_decided(work_dir: Path) -> None:
    params = XSS.model_validate(
        {"lute_config": header(work_dir), "ipm_var": "i", "smd_path": ""}, context=WORKER_CONTEXT
    )
    assert params.smd_path == ""


def test_the_default_is_the_file_of_the_same_run(work_dir: Path) -> None:
    record_smd(work_dir, 20, "/data/xppl1001021_Run0020.h5")
    record_smd(work_dir, 21, "/data/xppl1001021_Run0021.h5")
    params = XSS.model_validate({"lute_config": header(work_dir, run=20), "ipm_var": "i"})
    assert params.smd_path == "/data/xppl1001021_Run0020.h5"
