"""The geometry Tasks' parameters on the host: upstream's names and defaults, and powder from SubmitSMD's row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from lute_kernel.db import RunRecord, record_run
from lute_kernel.registry import discover

TASKS = Path(__file__).resolve().parents[2] / "tasks"
REGISTRY = discover([TASKS], entry_points=False)
AGBH = REGISTRY.get("OptimizeAgBhGeometryExhaustive").cls.Parameters
BAYFAI = REGISTRY.get("BayFAI").cls.Parameters


def lute_config(work_dir: Path, run: Any = 30) -> dict:
    return {"experiment": "xppl1001021", "run": run, "work_dir": str(work_dir)}


def record_smd(work_dir: Path, payload: str) -> None:
    header = {
        "title": "t",
        "experiment": "xppl1001021",
        "run": 30,
        "date": "2026/12/01",
        "lute_version": 0.1,
        "task_timeout": 600,
        "work_dir": str(work_dir),
    }
    record_run(
        work_dir,
        RunRecord(
            task_name="SubmitSMD", header=header, parameters={}, task_status="COMPLETED", summary="", payload=payload
        ),
    )


def test_registered_with_upstreams_managed_task_names() -> None:
    assert REGISTRY.get("AgBhGeometryOptimizer").name == "OptimizeAgBhGeometryExhaustive"
    for alias in ("BayFAIOptimizer", "BayFAIOptimizer2"):
        assert REGISTRY.get(alias).name == "BayFAI"
    for name in ("OptimizeAgBhGeometryExhaustive", "BayFAI"):
        cls = REGISTRY.get(name).cls
        assert cls.mpi and cls.image == "psana2"


def test_agbh_defaults_and_powder_from_submit_smd(work_dir: Path) -> None:
    record_smd(work_dir, "/data/xppl1001021_Run0030.h5")
    params = AGBH.model_validate({"lute_config": lute_config(work_dir), "detname": "Rayonix"})
    assert params.powder == "/data/xppl1001021_Run0030.h5"
    assert params.geom_out_dir == str(work_dir / "geom")
    assert (params.mask, params.n_peaks, params.n_iterations, params.threshold) == (None, 4, 5, 1e6)
    assert (params.dx, params.dy, params.center_guess, params.distance_guess) == ((-6, 6, 5), (-6, 6, 5), None, None)


def test_agbh_needs_a_detector_and_a_grid(work_dir: Path) -> None:
    with pytest.raises(ValidationError) as missing:
        AGBH.model_validate({"lute_config": lute_config(work_dir), "powder": "/p.npy"})
    assert [e["loc"] for e in missing.value.errors()] == [("detname",)]
    with pytest.raises(ValidationError, match="num_steps must be at least 1"):
        AGBH.model_validate(
            {"lute_config": lute_config(work_dir), "powder": "/p.npy", "detname": "d", "dx": [-1, 1, 0]}
        )
    with pytest.raises(ValidationError, match="No path provided for powder"):
        AGBH.model_validate({"lute_config": lute_config(work_dir), "detname": "d"})


def test_bayfai_defaults_are_upstreams_newest(work_dir: Path) -> None:
    params = BAYFAI.model_validate(
        {"lute_config": lute_config(work_dir), "h5": "/d.h5", "detname": "j", "calibrant": "AgBh"}
    )
    assert params.center == {"dist": 0.1, "poni1": 0.0, "poni2": 0.0, "rot1": 0.0, "rot2": 0.0, "rot3": 0.0}
    assert params.bounds["dist"] == (-0.05, 0.05) and params.bounds["rot1"] == (-0.1, 0.1)
    assert params.resolutions == {
        "dist": 0.001,
        "poni1": 0.0001,
        "poni2": 0.0001,
        "rot1": 0.02,
        "rot2": 0.02,
        "rot3": 0.02,
    }
    assert (params.fixed, params.wavelength) == (["rot3"], 1e-10)
    bo = params.bo_params
    assert (bo.n_samples, bo.n_iterations, bo.max_rings, bo.pts_per_deg, bo.Imin) == (20, 80, 6, 0.5, 95)
    assert (bo.prior, bo.beta, bo.step, bo.lbda, bo.seed) == (True, 1.96, 5, 0.1, None)
    assert params.out_file == str(work_dir / "geom" / "30-end.data") == params.result_from_params()


def test_bayfai_h5_from_submit_smd_or_the_older_powder(work_dir: Path) -> None:
    base = {"lute_config": lute_config(work_dir), "detname": "j", "calibrant": "LaB6"}
    older = BAYFAI.model_validate(
        {**base, "powder": "/old.h5", "in_file": "/calib/0-end.data", "preprocess": "Diagonal"}
    )
    assert older.h5 == "/old.h5"
    record_smd(work_dir, "/data/xppl1001021_Run0030.h5")
    assert BAYFAI.model_validate(base).h5 == "/data/xppl1001021_Run0030.h5"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"detname": ""}, "detname is empty"),
        ({"calibrant": ""}, "calibrant is empty"),
        ({"fixed": ["rot4"]}, "unknown geometry parameter"),
        ({"center": {"dist": 0.1}}, "missing"),
        ({"bo_params": {"n_sample": 3}}, "Extra inputs"),
    ],
)
def test_bayfai_refuses_what_it_cannot_run(work_dir: Path, section: dict, message: str) -> None:
    base = {"lute_config": lute_config(work_dir), "h5": "/d.h5", "detname": "j", "calibrant": "AgBh", **section}
    with pytest.raises(ValidationError, match=message):
        BAYFAI.model_validate(base)
