"""TestMultiNodeCommunication without MPI (tasks/mpi_test.py): parameters, the PNG plot, run() on fake ranks.

``run()`` is driven with a stand-in ``mpi4py`` module (a world of one or two ranks, in this process);
the real ranks are in tests/integration/test_mpi_task.py.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import types
import zlib
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pytest
from pydantic import ValidationError

from lute_kernel.parameters import WORKER_CONTEXT
from lute_kernel.registry import discover
from lute_kernel.task import Reporter, TaskStatus

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def task_cls() -> Any:
    return discover([REPO / "tasks"], entry_points=False).get("TestMultiNodeCommunication").cls


@pytest.fixture(scope="module")
def module(task_cls: Any) -> Any:
    return sys.modules[task_cls.__module__]


def validate(task_cls: Any, work_dir: Path, context: Any = None, **section: Any) -> Any:
    return task_cls.Parameters.model_validate({"lute_config": {"work_dir": str(work_dir)}, **section}, context=context)


# --- declaration and parameters ---------------------------------------------------------------


def test_declared_as_a_two_rank_mpi_task_in_the_psana2_image(task_cls: Any) -> None:
    assert task_cls.image == "psana2"
    assert task_cls.mpi is True
    assert task_cls.resources.ranks == 2


def test_found_by_its_upstream_managed_task_name() -> None:
    registry = discover([REPO / "tasks"], entry_points=False)
    assert registry.get("MultiNodeCommunicationTester").name == "TestMultiNodeCommunication"


def test_defaults(task_cls: Any, work_dir: Path) -> None:
    params = validate(task_cls, work_dir)
    assert (params.send_obj, params.arr_size) == ("plot", 5)
    assert json.loads(json.dumps(params.task_values())) == {"send_obj": "plot", "arr_size": 5}


@pytest.mark.parametrize("context", [None, WORKER_CONTEXT])
def test_good_values(task_cls: Any, work_dir: Path, context: Any) -> None:
    params = validate(task_cls, work_dir, context, send_obj="array", arr_size=1)
    assert (params.send_obj, params.arr_size) == ("array", 1)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"send_obj": "figure"}, "Input should be 'plot' or 'array'"),
        ({"arr_size": 0}, "Input should be greater than or equal to 1"),
        ({"arr_size": -3}, "Input should be greater than or equal to 1"),
        ({"arr_size": 2.5}, "Input should be a valid integer"),
    ],
)
def test_bad_values(task_cls: Any, work_dir: Path, section: Dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate(task_cls, work_dir, **section)
    assert [e["msg"].split(",")[0] for e in info.value.errors()] == [message]


def test_the_module_imports_without_numpy_or_mpi4py() -> None:
    code = (
        "import sys\n"
        "for name in ('numpy', 'mpi4py'): sys.modules[name] = None\n"
        "from lute_kernel.registry import discover\n"
        f"registry = discover([{str(REPO / 'tasks')!r}], entry_points=False)\n"
        "print(registry.get('TestMultiNodeCommunication').name)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "TestMultiNodeCommunication"


# --- the PNG encoder and the plot -------------------------------------------------------------


def read_png(data: bytes) -> Tuple[Dict[str, int], List[bytes]]:
    """Parse an 8-bit greyscale PNG as encode_png writes it: header fields and pixel rows."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: List[Tuple[bytes, bytes]] = []
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        at += 12 + length
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"] and at == len(data)
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    header = {"width": width, "height": height, "depth": depth, "colour": colour}
    assert (compression, filtering, interlace) == (0, 0, 0)
    raw = zlib.decompress(chunks[1][1])
    assert len(raw) == height * (width + 1)  # one filter byte per row
    lines = [raw[i * (width + 1) : (i + 1) * (width + 1)] for i in range(height)]
    assert all(line[0] == 0 for line in lines)  # filter "none"
    return header, [line[1:] for line in lines]


def test_png_of_a_small_image(module: Any) -> None:
    rows = [[0, 128, 255], [1, 2, 3]]
    header, pixels = read_png(module.encode_png(rows))
    assert header == {"width": 3, "height": 2, "depth": 8, "colour": 0}
    assert pixels == [bytes(r) for r in rows]


def test_png_of_a_uint8_array(module: Any) -> None:
    image = np.arange(7 * 5, dtype=np.uint8).reshape(7, 5)
    header, pixels = read_png(module.encode_png(image))
    assert (header["width"], header["height"]) == (5, 7)
    assert np.array_equal(np.frombuffer(b"".join(pixels), dtype=np.uint8).reshape(7, 5), image)


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        ([], ValueError),
        ([[]], ValueError),
        ([[1, 2], [3]], ValueError),
        ([[256]], ValueError),
        ([[-1]], ValueError),
        (np.zeros((2, 2), dtype=np.int64), TypeError),  # its bytes are not one byte per pixel
    ],
)
def test_png_refuses_what_is_not_greyscale_pixels(module: Any, rows: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        module.encode_png(rows)


def test_the_plot_has_axes_and_a_line_in_every_column(module: Any) -> None:
    pixels = module.draw_line_plot(module.plot_values(0), width=96, height=64)
    image = np.array([list(row) for row in pixels], dtype=np.uint8)
    assert image.shape == (64, 96) and set(np.unique(image)) == {0, 255}
    axis_row, axis_col = 64 - 4, 4
    assert (image[axis_row, axis_col:] == 0).all() and (image[: axis_row + 1, axis_col] == 0).all()
    inside = image[:axis_row, axis_col + 1 :]
    assert ((inside == 0).any(axis=0)[:-1]).all()  # the line is continuous up to the last column
    _, decoded = read_png(module.encode_png(pixels))
    assert decoded == [bytes(row) for row in pixels]


def test_each_rank_draws_its_own_plot(module: Any) -> None:
    first, second = (module.encode_png(module.draw_line_plot(module.plot_values(rank))) for rank in (0, 1))
    assert first != second
    assert all(0.0 <= v <= 1.0 for v in module.plot_values(3))


def test_one_value_and_out_of_range_values_still_draw(module: Any) -> None:
    assert len(module.draw_line_plot([0.5], width=16, height=16)) == 16
    assert len(module.draw_line_plot([-5.0, 7.0], width=16, height=16)) == 16
    with pytest.raises(ValueError):
        module.draw_line_plot([])
    with pytest.raises(ValueError):
        module.draw_line_plot([0.5], width=4, height=4)


# --- run() on stand-in ranks ------------------------------------------------------------------


class RecordingReporter(Reporter):
    def __init__(self) -> None:
        self.calls: List[Tuple[float, Optional[float], str, Any]] = []

    def progress(self, done: float, total: Optional[float], message: str, data: Any = None) -> None:
        self.calls.append((done, total, message, data))


class FakeWorld:
    """COMM_WORLD as one rank of ``size`` sees it; the other ranks' gather reports are given."""

    def __init__(self, rank: int, size: int, others: Any = None, root_outcome: Any = None) -> None:
        self.rank, self.size, self.others, self.root_outcome = rank, size, others or [], root_outcome
        self.gathered: Any = None

    def Get_rank(self) -> int:
        return self.rank

    def Get_size(self) -> int:
        return self.size

    def gather(self, obj: Any, root: int = 0) -> Any:
        self.gathered = obj
        return [obj, *self.others] if self.rank == root else None

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj if self.rank == root else self.root_outcome


@pytest.fixture
def fake_mpi(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    mpi = types.SimpleNamespace(COMM_WORLD=FakeWorld(0, 1), Get_processor_name=lambda: "node-a")
    monkeypatch.setitem(sys.modules, "mpi4py", types.SimpleNamespace(MPI=mpi))
    return mpi


def run_rank(task_cls: Any, work_dir: Path, **section: Any) -> Tuple[Any, RecordingReporter]:
    reporter = RecordingReporter()
    task = task_cls(validate(task_cls, work_dir, WORKER_CONTEXT, **section), reporter)
    task.run()
    return task, reporter


def test_one_process_sends_its_array_and_reports_itself(
    task_cls: Any, work_dir: Path, fake_mpi: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    task, reporter = run_rank(task_cls, work_dir, send_obj="array", arr_size=3)
    assert "rank 0 of 1 on host node-a" in caplog.messages
    [(done, total, message, data)] = reporter.calls
    assert (done, total, message) == (1, 1, "rank 0: sent array (24 bytes)")
    assert data["rank"] == 0 and data["format"] == "array"
    assert data["array"].dtype == np.float64 and data["array"].tolist() == [0.0, 0.0, 0.0]
    crc = zlib.crc32(np.zeros(3).tobytes())
    assert task.result.summary == {"ranks": 1, "send_obj": "array", "received": 1, "hosts": 1}
    assert task.result.payload == {"reports": [{"rank": 0, "host": "node-a", "nbytes": 24, "crc32": crc}]}
    assert task.result.task_status == TaskStatus.RUNNING  # the worker marks it COMPLETED


def test_the_plot_travels_as_png_bytes_in_a_uint8_array(task_cls: Any, work_dir: Path, fake_mpi: Any) -> None:
    task, reporter = run_rank(task_cls, work_dir)
    data = reporter.calls[0][3]
    assert data["format"] == "png" and data["image"].dtype == np.uint8
    png = data["image"].tobytes()
    header, _ = read_png(png)
    assert (header["width"], header["height"]) == (data["width"], data["height"])
    assert task.result.payload["reports"][0]["crc32"] == zlib.crc32(png)
    assert task.result.summary["send_obj"] == "plot"


def test_rank_zero_gathers_every_rank(task_cls: Any, work_dir: Path, fake_mpi: Any) -> None:
    other = {"rank": 1, "host": "node-b", "nbytes": 40, "crc32": 7}
    fake_mpi.COMM_WORLD = FakeWorld(0, 2, others=[other])
    task, _ = run_rank(task_cls, work_dir, send_obj="array")
    assert task.result.summary == {"ranks": 2, "send_obj": "array", "received": 2, "hosts": 2}
    assert [r["rank"] for r in task.result.payload["reports"]] == [0, 1]


def test_other_ranks_send_their_own_object_and_end_with_rank_zeros_result(
    task_cls: Any, work_dir: Path, fake_mpi: Any
) -> None:
    root_outcome = ({"ranks": 2, "from": "rank 0"}, {"reports": []})
    world = fake_mpi.COMM_WORLD = FakeWorld(1, 2, root_outcome=root_outcome)
    task, reporter = run_rank(task_cls, work_dir, send_obj="array", arr_size=4)
    assert reporter.calls[0][3]["array"].tolist() == [1.0] * 4
    assert world.gathered == {
        "rank": 1,
        "host": "node-a",
        "nbytes": 32,
        "crc32": zlib.crc32(np.full(4, 1.0).tobytes()),
    }
    assert (task.result.summary, task.result.payload) == root_outcome
