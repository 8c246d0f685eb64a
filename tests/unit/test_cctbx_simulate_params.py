"""SimulateStills on the host: its parameters validate without cctbx; outputs land under work_dir."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from lute_kernel.parameters import WORKER_CONTEXT
from lute_kernel.registry import discover

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def task_cls() -> Any:
    return discover([REPO / "tasks"], entry_points=False).get("SimulateStills").cls


def validate(task_cls: Any, work_dir: Path, context: Any = None, **section: Any) -> Any:
    header = {"experiment": "mfxp1001", "run": 12, "work_dir": str(work_dir)}
    return task_cls.Parameters.model_validate({"lute_config": header, **section}, context=context)


def test_a_first_party_task_of_the_cctbx_image(task_cls: Any) -> None:
    assert (task_cls.image, task_cls.kind, task_cls.mpi) == ("cctbx", "python", False)


def test_defaults_put_the_stills_in_a_folder_of_the_run(task_cls: Any, work_dir: Path) -> None:
    params = validate(task_cls, work_dir, n_images=50)
    assert params.out_dir == str(work_dir / "stills_r0012")
    assert (params.n_images, params.seed, params.prefix, params.pdb_file) == (50, 1, "still", "")
    assert (params.wavelength, params.detector_distance, params.image_size, params.d_min) == (1.3, 100.0, 2048, 1.6)


def test_a_relative_out_dir_is_under_work_dir_and_the_worker_keeps_it(task_cls: Any, work_dir: Path) -> None:
    params = validate(task_cls, work_dir, out_dir="sim/a")
    assert params.out_dir == str(work_dir / "sim" / "a")
    again = task_cls.Parameters.model_validate(params.model_dump(mode="json"), context=WORKER_CONTEXT)
    assert again.out_dir == params.out_dir  # the worker validates what the host resolved


@pytest.mark.parametrize(
    ("field", "value"),
    [("n_images", 0), ("wavelength", -1.0), ("image_size", 32), ("background", -1.0), ("prefix", "a/b")],
)
def test_bad_values_are_field_errors(task_cls: Any, work_dir: Path, field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        validate(task_cls, work_dir, **{field: value})
    assert info.value.errors()[0]["loc"] == (field,)


def test_unknown_parameters_are_errors(task_cls: Any, work_dir: Path) -> None:
    with pytest.raises(ValidationError, match="n_image"):
        validate(task_cls, work_dir, n_image=5)


@given(st.builds(lambda a, sep, b: a + sep + b, st.text(max_size=5), st.sampled_from(["/", "."]), st.text(max_size=5)))
def test_prefixes_that_are_not_plain_names_are_refused(task_cls: Any, prefix: str) -> None:
    if "/" not in prefix and not prefix.startswith("."):
        prefix = "/" + prefix  # a "." inside a name is fine; make this one a path
    with pytest.raises(ValidationError):
        task_cls.Parameters.model_validate({"lute_config": {"work_dir": "/", "run": 1}, "prefix": prefix})


def test_the_host_imports_the_task_modules_without_cctbx() -> None:
    code = (
        "import sys; from lute_kernel.registry import discover; "
        f"r = discover([{str(REPO / 'tasks')!r}], entry_points=False); "
        "[r.get(n) for n in ('SimulateStills', 'IndexCCTBXXFEL', 'MergeCCTBXXFEL')]; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('cctbx', 'dxtbx', 'dials', 'iotbx', 'numpy')]; "
        "assert not heavy, heavy; "
        "assert not r.failures, r.failures"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
