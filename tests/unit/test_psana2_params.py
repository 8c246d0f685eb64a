"""SmallDataPsana2's parameters, validated on the host without psana, numpy or h5py (tasks/psana2.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
from pydantic import ValidationError

from lute_kernel.parameters import WORKER_CONTEXT, TaskParameters
from lute_kernel.registry import discover

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def task_cls() -> Any:
    return discover([REPO / "tasks"], entry_points=False).get("SmallDataPsana2").cls


@pytest.fixture
def xtc_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.xtc2"
    path.write_bytes(b"")  # validation checks existence only
    return path


def validate(task_cls: Any, work_dir: Path, header: Any = None, context: Any = None, **section: Any) -> Any:
    lute_config = {"experiment": "xpptut15", "run": 14, "work_dir": str(work_dir), **(header or {})}
    params: TaskParameters = task_cls.Parameters.model_validate(
        {"lute_config": lute_config, **section}, context=context
    )
    return params


def errors(info: pytest.ExceptionInfo[ValidationError]) -> str:
    return "; ".join(e["msg"] for e in info.value.errors())


def test_declared_for_the_psana2_image(task_cls: Any) -> None:
    assert task_cls.image == "psana2"
    assert "PS_*" in task_cls.env  # psana2's tuning variables reach the Task


def test_defaults_and_the_result_path(task_cls: Any, work_dir: Path, xtc_file: Path) -> None:
    params = validate(task_cls, work_dir, files=[str(xtc_file)])
    expected = str(work_dir / "smalldata" / "xpptut15_r0014.h5")
    assert params.out_file == expected
    assert params.result_from_params() == expected  # the executor's fallback payload
    assert (params.detector, params.array, params.roi, params.max_events) == ("xppcspad", "raw", None, None)
    assert params.logbook_lookup is False
    values = params.task_values()
    assert values["out_file"] == expected and values["files"] == [str(xtc_file)]
    json.dumps(values)  # flattened into the DB as JSON


def test_out_file_relative_to_work_dir_or_absolute(task_cls: Any, work_dir: Path, xtc_file: Path) -> None:
    relative = validate(task_cls, work_dir, files=[str(xtc_file)], out_file="sd/r14.h5")
    assert relative.out_file == str(work_dir / "sd" / "r14.h5")
    absolute = validate(task_cls, work_dir, files=[str(xtc_file)], out_file="/elsewhere/r14.h5")
    assert absolute.out_file == "/elsewhere/r14.h5"


def test_without_a_run_number_the_output_is_named_after_the_file(task_cls: Any, work_dir: Path, xtc_file: Path) -> None:
    params = validate(task_cls, work_dir, header={"run": ""}, files=[str(xtc_file)])
    assert params.out_file == str(work_dir / "smalldata" / "data.h5")


def test_exactly_one_input(task_cls: Any, work_dir: Path, xtc_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as neither:
        validate(task_cls, work_dir)
    assert "give exactly one of files or xtc_dir" in errors(neither)
    with pytest.raises(ValidationError) as both:
        validate(task_cls, work_dir, files=[str(xtc_file)], xtc_dir=str(tmp_path))
    assert "give exactly one of files or xtc_dir" in errors(both)


def test_missing_files_fail_on_the_host_only(task_cls: Any, work_dir: Path, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.xtc2")
    with pytest.raises(ValidationError) as info:
        validate(task_cls, work_dir, files=[missing])
    assert f"XTC2 file(s) not found: {missing}" in errors(info)
    # Inside the container the host's answer stands (the paths were checked before launch).
    assert validate(task_cls, work_dir, context=WORKER_CONTEXT, files=[missing]).files == [missing]


def test_xtc_dir_needs_the_run_files_and_their_smalldata_index(task_cls: Any, work_dir: Path, tmp_path: Path) -> None:
    xtc_dir = tmp_path / "xtc"
    (xtc_dir / "smalldata").mkdir(parents=True)
    with pytest.raises(ValidationError) as no_data:
        validate(task_cls, work_dir, xtc_dir=str(xtc_dir))
    assert "no *-r0014-s*.xtc2 files" in errors(no_data)
    (xtc_dir / "xpptut15-r0014-s000-c000.xtc2").write_bytes(b"")
    with pytest.raises(ValidationError) as no_index:
        validate(task_cls, work_dir, xtc_dir=str(xtc_dir))
    assert "write it with psana's smdwriter" in errors(no_index)
    (xtc_dir / "smalldata" / "xpptut15-r0014-s000-c000.smd.xtc2").write_bytes(b"")
    params = validate(task_cls, work_dir, xtc_dir=str(xtc_dir))
    assert params.out_file == str(work_dir / "smalldata" / "xpptut15_r0014.h5")


@pytest.mark.parametrize("header", [{"experiment": ""}, {"run": ""}, {"run": "last"}])
def test_xtc_dir_needs_experiment_and_run_number(
    task_cls: Any, work_dir: Path, tmp_path: Path, header: Dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as info:
        validate(task_cls, work_dir, header=header, xtc_dir=str(tmp_path))
    assert "xtc_dir needs the experiment and run number in the config header" in errors(info)


def test_a_good_roi(task_cls: Any, work_dir: Path, xtc_file: Path) -> None:
    params = validate(task_cls, work_dir, files=[str(xtc_file)], roi=[[0, 3], [2, 5]])
    assert params.roi == [(0, 3), (2, 5)]


@pytest.mark.parametrize(
    ("roi", "message"),
    [
        ([[3, 3]], "roi axis 0: stop 3 must be greater than start 3"),
        ([[0, 2], [5, 1]], "roi axis 1: stop 1 must be greater than start 5"),
        ([[-1, 2]], "Input should be greater than or equal to 0"),
        ([], "roi needs 1 to 3 [start, stop) pairs, got 0"),
        ([[0, 1]] * 4, "roi needs 1 to 3 [start, stop) pairs, got 4"),
        ([[0, 1, 2]], "Tuple should have at most 2 items"),
    ],
)
def test_bad_rois(task_cls: Any, work_dir: Path, xtc_file: Path, roi: Any, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate(task_cls, work_dir, files=[str(xtc_file)], roi=roi)
    assert message in errors(info)


@pytest.mark.parametrize(
    "section",
    [{"max_events": 0}, {"progress_every": 0}, {"batch_size": -1}, {"array": "pedestal"}, {"detecter": "x"}],
)
def test_other_bad_values(task_cls: Any, work_dir: Path, xtc_file: Path, section: Dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        validate(task_cls, work_dir, files=[str(xtc_file)], **section)


def test_roi_index_covers_the_last_axes(task_cls: Any) -> None:
    roi_slices = sys.modules[task_cls.__module__]._roi_slices
    assert roi_slices([(0, 2), (1, 4)], (2, 3, 6)) == (slice(None), slice(0, 2), slice(1, 4))
    assert roi_slices([(1, 2), (0, 3), (5, 6)], (2, 3, 6)) == (slice(1, 2), slice(0, 3), slice(5, 6))
    with pytest.raises(ValueError, match=r"roi axis 1: stop 7 is beyond the array's 6 \(shape \(2, 3, 6\)\)"):
        roi_slices([(0, 3), (0, 7)], (2, 3, 6))
    with pytest.raises(ValueError, match="roi has 3 axes but the array has shape"):
        roi_slices([(0, 1)] * 3, (6, 6))


def test_the_module_imports_without_psana_numpy_or_h5py() -> None:
    # Block the heavy packages outright: importing one would raise ImportError.
    code = (
        "import sys\n"
        "for name in ('psana', 'numpy', 'h5py', 'mpi4py'): sys.modules[name] = None\n"
        "from lute_kernel.registry import discover\n"
        f"spec = discover([__import__('pathlib').Path({str(REPO / 'tasks')!r})], entry_points=False)"
        ".get('SmallDataPsana2')\n"
        "print(spec.cls.image)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "psana2"
