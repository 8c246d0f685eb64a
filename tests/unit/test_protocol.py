"""The IPC wire format (lute_kernel.ipc.protocol): JSON header frame plus raw array frames, never pickle."""

from __future__ import annotations

import ast
import enum
import json
import pickle
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

from lute_kernel.errors import MessageTooLarge, ProtocolError
from lute_kernel.ipc import protocol
from lute_kernel.ipc.protocol import KINDS, PROTOCOL_VERSION, decode, encode
from lute_kernel.task import TaskStatus


@pytest.fixture(autouse=True)
def no_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any use of pickle while a test runs fails it."""

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("pickle must never be used by the IPC protocol")

    for name in ("dumps", "loads", "dump", "load", "Pickler", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)


def header_of(frames: List[Any]) -> Dict[str, Any]:
    head = frames[0]
    assert isinstance(head, bytes)
    parsed = json.loads(head)
    assert isinstance(parsed, dict)
    return parsed


def raw_header(**fields: Any) -> bytes:
    header = {"v": PROTOCOL_VERSION, "kind": "log", "rank": 0, "body": {}, "buffers": []}
    header.update(fields)
    return json.dumps(header).encode()


def test_the_protocol_module_does_not_reference_pickle() -> None:
    assert "pickle" not in vars(protocol)
    tree = ast.parse(Path(protocol.__file__).read_text())
    imported = [
        alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names
    ] + [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
    assert not [name for name in imported if "pickle" in name]


BODIES = {
    "hello": {"token": "abc123", "pid": 4242, "python": "3.9.18"},
    "params": {"task": "Test", "module": "test", "class": "Test", "tasks_dir": None, "params": {"x": [1, 2.5]}},
    "log": {"level": "INFO", "logger": "lute.task.Test", "message": "Test message 3", "time": 1.5},
    "progress": {"done": 3, "total": 10, "message": "step 2"},
    "result": {"task_status": "COMPLETED", "summary": {"a": 1}, "payload": None, "impl_schemas": ""},
    "error": {"type": "RuntimeError", "message": "Testing Error!", "traceback": "Traceback...\n"},
    "bye": {"exit_code": 0},
}


def test_every_kind_has_a_body_here() -> None:
    assert set(BODIES) == set(KINDS) == {"hello", "params", "log", "progress", "result", "error", "bye"}


@pytest.mark.parametrize("kind", sorted(BODIES))
@pytest.mark.parametrize("rank", [0, 7])
def test_round_trip_of_every_kind_carries_the_rank(kind: str, rank: int) -> None:
    frames = encode(kind, BODIES[kind], rank=rank)
    assert len(frames) == 1
    assert header_of(frames) == {"v": 1, "kind": kind, "rank": rank, "body": BODIES[kind], "buffers": []}
    message = decode(frames)
    assert (message.kind, message.rank, message.body, message.arrays) == (kind, rank, BODIES[kind], [])
    assert message.nbytes == len(frames[0])


ARRAYS = [
    np.arange(8000, dtype=np.float64),
    np.arange(12, dtype=np.int32).reshape(3, 4),
    np.array([0, 255, 7], dtype=np.uint8),
    np.array([1 + 2j, -3.5j], dtype=np.complex128),
    np.array([True, False, True]),
    np.arange(6, dtype=">i4").reshape(2, 3),
    np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5),
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype.str}{a.shape}")
def test_arrays_travel_as_raw_buffer_frames(array: np.ndarray) -> None:
    frames = encode("progress", {"done": 1, "data": array})
    header = header_of(frames)
    assert header["body"] == {"done": 1, "data": {"__ndarray__": 0}}
    assert header["buffers"] == [{"dtype": array.dtype.str, "shape": list(array.shape)}]
    assert len(frames) == 2
    assert bytes(frames[1]) == array.tobytes()
    if array.nbytes > 100:
        assert len(frames[0]) < 200  # the header holds no array data

    restored = decode(frames).body["data"]
    assert restored.dtype == array.dtype
    assert restored.shape == array.shape
    np.testing.assert_array_equal(restored, array)


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.float64).reshape(4, 6)[:, ::2],
        np.arange(24, dtype=np.int16).reshape(4, 6).T,
        np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        np.arange(10)[::-1],
    ],
    ids=["strided", "transposed", "fortran", "reversed"],
)
def test_non_contiguous_arrays_are_sent_in_c_order(array: np.ndarray) -> None:
    frames = encode("progress", {"data": array})
    assert bytes(frames[1]) == np.ascontiguousarray(array).tobytes()
    restored = decode(frames).body["data"]
    assert restored.shape == array.shape
    np.testing.assert_array_equal(restored, array)


@pytest.mark.parametrize(
    "array",
    [np.zeros((0,), dtype=np.float64), np.zeros((3, 0), dtype=np.int32), np.array(2.5)],
    ids=["empty", "empty-2d", "zero-d"],
)
def test_empty_and_zero_dimensional_arrays_keep_their_shape(array: np.ndarray) -> None:
    frames = encode("progress", {"data": array})
    assert header_of(frames)["buffers"] == [{"dtype": array.dtype.str, "shape": list(array.shape)}]
    restored = decode(frames).body["data"]
    assert restored.shape == array.shape and restored.dtype == array.dtype
    np.testing.assert_array_equal(restored, array)


def test_arrays_nested_in_dicts_and_lists() -> None:
    a, b, c = np.arange(3.0), np.ones((2, 2), dtype=np.int64), np.array([9], dtype=np.uint16)
    body = {"outer": {"inner": a, "list": [b, {"deep": c}, "text"]}, "tuple": (1, a)}
    frames = encode("result", body)
    header = header_of(frames)
    assert header["body"] == {
        "outer": {"inner": {"__ndarray__": 0}, "list": [{"__ndarray__": 1}, {"deep": {"__ndarray__": 2}}, "text"]},
        "tuple": [1, {"__ndarray__": 3}],
    }
    assert len(frames) == 5
    message = decode(frames)
    got = message.body
    np.testing.assert_array_equal(got["outer"]["inner"], a)
    np.testing.assert_array_equal(got["outer"]["list"][0], b)
    np.testing.assert_array_equal(got["outer"]["list"][1]["deep"], c)
    assert got["outer"]["list"][2] == "text"
    np.testing.assert_array_equal(got["tuple"][1], a)
    assert len(message.arrays) == 4
    assert message.nbytes == sum(len(bytes(f)) for f in frames)


def test_numpy_scalars_become_json_numbers() -> None:
    body = {"f": np.float64(1.5), "f32": np.float32(0.25), "i": np.int64(3), "u": np.uint8(255), "b": np.bool_(True)}
    frames = encode("log", body)
    assert len(frames) == 1
    assert header_of(frames)["body"] == {"f": 1.5, "f32": 0.25, "i": 3, "u": 255, "b": True}
    decoded = decode(frames).body
    assert decoded == {"f": 1.5, "f32": 0.25, "i": 3, "u": 255, "b": True}
    assert type(decoded["i"]) is int and type(decoded["b"]) is bool


class Color(enum.Enum):
    RED = "red"
    TWO = 2


def test_enums_become_their_values() -> None:
    frames = encode("result", {"task_status": TaskStatus.COMPLETED, "c": Color.RED, "n": Color.TWO})
    assert header_of(frames)["body"] == {"task_status": "COMPLETED", "c": "red", "n": 2}


def test_unknown_objects_are_sent_as_text() -> None:
    assert header_of(encode("log", {"x": frozenset({1}), "p": Path("/w/out.txt")}))["body"] == {
        "x": "frozenset({1})",
        "p": "/w/out.txt",
    }


def test_non_string_keys_become_strings() -> None:
    assert decode(encode("log", {"d": {1: "a", 2.5: "b"}})).body == {"d": {"1": "a", "2.5": "b"}}


def test_unknown_kind_is_refused_on_both_ends() -> None:
    with pytest.raises(ProtocolError, match="unknown message kind 'bogus'"):
        encode("bogus", {})
    with pytest.raises(ProtocolError, match="unknown message kind 'bogus'"):
        decode([raw_header(kind="bogus")])


@pytest.mark.parametrize(("version", "shown"), [(2, "2"), (0, "0"), (None, "None"), ("1", "'1'")])
def test_wrong_version_is_refused(version: Any, shown: str) -> None:
    with pytest.raises(ProtocolError, match=f"unsupported protocol version {shown}$"):
        decode([raw_header(v=version)])


@pytest.mark.parametrize(
    ("frames", "text"),
    [
        ([], "empty message"),
        ([b"\x80\x04not json"], "header frame is not JSON"),
        ([b"[1, 2]"], "unsupported protocol version None"),
    ],
)
def test_malformed_headers_are_refused(frames: List[bytes], text: str) -> None:
    with pytest.raises(ProtocolError, match=text):
        decode(frames)


def test_buffer_count_must_match_the_header() -> None:
    frames = encode("progress", {"data": np.arange(4)})
    with pytest.raises(ProtocolError, match="progress message announces 1 buffers but carries 0"):
        decode(frames[:1])
    with pytest.raises(ProtocolError, match="progress message announces 1 buffers but carries 2"):
        decode([*frames, b"extra"])
    with pytest.raises(ProtocolError, match="log message announces 0 buffers but carries 1"):
        decode([raw_header(), b"\x00" * 8])


@pytest.mark.parametrize(
    ("spec", "data"),
    [
        ({"dtype": "<f8", "shape": [10]}, b"\x00" * 8),
        ({"dtype": "<f8", "shape": [3]}, b"\x00" * 7),
        ({"dtype": "not-a-dtype", "shape": [1]}, b"\x00" * 8),
        ({"dtype": "|O", "shape": [1]}, b"\x00" * 8),
        ({"shape": [1]}, b"\x00" * 8),
    ],
    ids=["shape-too-big", "ragged", "bad-dtype", "object-dtype", "no-dtype"],
)
def test_inconsistent_buffer_descriptions_are_protocol_errors(spec: Dict[str, Any], data: bytes) -> None:
    head = raw_header(kind="progress", body={"data": {"__ndarray__": 0}}, buffers=[spec])
    with pytest.raises(ProtocolError):
        decode([head, data])


def test_an_array_reference_out_of_range_is_a_protocol_error() -> None:
    head = raw_header(body={"data": {"__ndarray__": 5}}, buffers=[{"dtype": "|u1", "shape": [1]}])
    with pytest.raises(ProtocolError):
        decode([head, b"\x00"])


def test_encode_enforces_the_size_cap_with_a_clear_message() -> None:
    array = np.zeros(2000, dtype=np.uint8)
    head_len = len(encode("progress", {"data": array})[0])
    total = head_len + 2000
    with pytest.raises(MessageTooLarge) as info:
        encode("progress", {"data": array}, max_bytes=1024)
    assert str(info.value) == (
        f"progress message of {total} bytes exceeds the IPC size cap of 1024 bytes;"
        " write large data to a file under work_dir and send its path"
    )
    assert isinstance(info.value, ProtocolError)
    assert len(encode("progress", {"data": array}, max_bytes=total)) == 2  # exactly at the cap is fine


def test_decode_enforces_the_size_cap() -> None:
    frames = encode("progress", {"data": np.zeros(4096, dtype=np.uint8)})
    total = sum(len(bytes(f)) for f in frames)
    with pytest.raises(MessageTooLarge) as info:
        decode(frames, max_bytes=1000)
    assert str(info.value) == f"received a {total}-byte message; the IPC size cap is 1000 bytes"
    assert decode(frames, max_bytes=total).nbytes == total


def test_the_protocol_module_imports_numpy_only_when_arrays_are_present() -> None:
    # The worker imports this module in every image: the stdlib only at import time.
    assert "numpy" not in vars(protocol) and "np" not in vars(protocol)
