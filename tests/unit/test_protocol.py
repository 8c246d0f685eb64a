"""The IPC wire format v2 (lute_kernel.ipc.protocol): JSON header frame plus raw array frames, never pickle.

Exact outputs for good messages and named errors for each bad field; the generated hostile cases
live in test_ipc_hostile_frames.py.
"""

from __future__ import annotations

import ast
import enum
import json
import pickle
import re
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


LOG_BODY = {"level": "INFO", "message": "m"}
PROGRESS = {"done": 1, "total": None, "message": ""}


def raw_header(**fields: Any) -> bytes:
    header = {"v": PROTOCOL_VERSION, "kind": "log", "rank": 0, "body": LOG_BODY, "buffers": []}
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
    "hello": {"pid": 4242, "python": "3.9.18"},
    "params": {"task": "Test", "module": "test", "class": "Test", "tasks_dir": None, "params": {"x": [1, 2.5]}},
    "log": {"level": "INFO", "logger": "lute.task.Test", "message": "Test message 3", "time": 1.5},
    "progress": {"done": 3, "total": 10, "message": "step 2"},
    "result": {"task_status": "COMPLETED", "summary": {"a": 1}, "payload": None, "impl_schemas": ""},
    "error": {"type": "RuntimeError", "message": "Testing Error!", "traceback": "Traceback...\n"},
    "bye": {"exit_code": 0},
}


def test_every_kind_has_a_body_here() -> None:
    # batch: messages of the other kinds in one frame set (tests/unit/test_ipc_batching.py)
    assert (
        set(BODIES) | {"batch"}
        == set(KINDS)
        == {"hello", "params", "log", "progress", "result", "error", "bye", "batch"}
    )


@pytest.mark.parametrize("kind", sorted(BODIES))
@pytest.mark.parametrize("rank", [0, 7])
def test_round_trip_of_every_kind_carries_the_rank(kind: str, rank: int) -> None:
    frames = encode(kind, BODIES[kind], rank=rank)
    assert len(frames) == 1
    assert PROTOCOL_VERSION == 2
    assert header_of(frames) == {"v": 2, "kind": kind, "rank": rank, "body": BODIES[kind], "buffers": []}
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
    frames = encode("progress", {**PROGRESS, "data": array})
    header = header_of(frames)
    assert header["body"] == {**PROGRESS, "data": {"__ndarray__": 0}}
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
    frames = encode("progress", {**PROGRESS, "data": array})
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
    frames = encode("progress", {**PROGRESS, "data": array})
    assert header_of(frames)["buffers"] == [{"dtype": array.dtype.str, "shape": list(array.shape)}]
    restored = decode(frames).body["data"]
    assert restored.shape == array.shape and restored.dtype == array.dtype
    np.testing.assert_array_equal(restored, array)


def test_arrays_nested_in_dicts_and_lists() -> None:
    a, b, c = np.arange(3.0), np.ones((2, 2), dtype=np.int64), np.array([9], dtype=np.uint16)
    body = {"outer": {"inner": a, "list": [b, {"deep": c}, "text"]}, "tuple": (1, a)}
    frames = encode("result", {"task_status": "COMPLETED", "payload": body})
    header = header_of(frames)
    assert header["body"]["payload"] == {
        "outer": {"inner": {"__ndarray__": 0}, "list": [{"__ndarray__": 1}, {"deep": {"__ndarray__": 2}}, "text"]},
        "tuple": [1, {"__ndarray__": 3}],
    }
    assert len(frames) == 5
    message = decode(frames)
    got = message.body["payload"]
    np.testing.assert_array_equal(got["outer"]["inner"], a)
    np.testing.assert_array_equal(got["outer"]["list"][0], b)
    np.testing.assert_array_equal(got["outer"]["list"][1]["deep"], c)
    assert got["outer"]["list"][2] == "text"
    np.testing.assert_array_equal(got["tuple"][1], a)
    assert len(message.arrays) == 4
    assert message.nbytes == sum(len(bytes(f)) for f in frames)


def test_numpy_scalars_become_json_numbers() -> None:
    body = {"f": np.float64(1.5), "f32": np.float32(0.25), "i": np.int64(3), "u": np.uint8(255), "b": np.bool_(True)}
    frames = encode("log", {**LOG_BODY, **body})
    assert len(frames) == 1
    assert header_of(frames)["body"] == {**LOG_BODY, "f": 1.5, "f32": 0.25, "i": 3, "u": 255, "b": True}
    decoded = {k: v for k, v in decode(frames).body.items() if k not in LOG_BODY}
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
    assert decode(encode("log", {**LOG_BODY, "d": {1: "a", 2.5: "b"}})).body["d"] == {"1": "a", "2.5": "b"}


def test_unknown_kind_is_refused_on_both_ends() -> None:
    with pytest.raises(ProtocolError, match="unknown message kind 'bogus'"):
        encode("bogus", {})
    with pytest.raises(ProtocolError, match="unknown message kind 'bogus'"):
        decode([raw_header(kind="bogus")])


@pytest.mark.parametrize(
    ("version", "shown"), [(1, "1"), (3, "3"), (0, "0"), (None, "None"), ("2", "'2'"), (2.0, "2.0"), ([2], "a list")]
)
def test_wrong_version_is_refused(version: Any, shown: str) -> None:
    with pytest.raises(ProtocolError, match=f"unsupported protocol version {shown}$"):
        decode([raw_header(v=version)])


@pytest.mark.parametrize(
    ("frames", "text"),
    [
        ([], "empty message"),
        ([b"\x80\x04not json"], "header frame is not UTF-8"),
        ([b"{not json"], "header frame is not JSON"),
        ([b"[1, 2]"], "header is a list, not an object"),
        ([b"\xff\xfe{}"], "header frame is not UTF-8"),
    ],
)
def test_malformed_headers_are_refused(frames: List[bytes], text: str) -> None:
    with pytest.raises(ProtocolError, match=text):
        decode(frames)


def test_buffer_count_must_match_the_header() -> None:
    frames = encode("progress", {**PROGRESS, "data": np.arange(4)})
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
    head = raw_header(kind="progress", body={**PROGRESS, "data": {"__ndarray__": 0}}, buffers=[spec])
    with pytest.raises(ProtocolError):
        decode([head, data])


def test_an_array_reference_out_of_range_is_a_protocol_error() -> None:
    head = raw_header(body={**LOG_BODY, "data": {"__ndarray__": 5}}, buffers=[{"dtype": "|u1", "shape": [1]}])
    with pytest.raises(ProtocolError):
        decode([head, b"\x00"])


def test_encode_enforces_the_size_cap_with_a_clear_message() -> None:
    array = np.zeros(2000, dtype=np.uint8)
    head_len = len(encode("progress", {**PROGRESS, "data": array})[0])
    total = head_len + 2000
    with pytest.raises(MessageTooLarge) as info:
        encode("progress", {**PROGRESS, "data": array}, max_bytes=1024)
    assert str(info.value) == (
        f"progress message of {total} bytes exceeds the IPC size cap of 1024 bytes;"
        " write large data to a file under work_dir and send its path"
    )
    assert isinstance(info.value, ProtocolError)
    assert len(encode("progress", {**PROGRESS, "data": array}, max_bytes=total)) == 2  # exactly at the cap is fine


def test_decode_enforces_the_size_cap() -> None:
    frames = encode("progress", {**PROGRESS, "data": np.zeros(4096, dtype=np.uint8)})
    total = sum(len(bytes(f)) for f in frames)
    with pytest.raises(MessageTooLarge) as info:
        decode(frames, max_bytes=1000)
    assert str(info.value) == f"received a {total}-byte message; the IPC size cap is 1000 bytes"
    assert decode(frames, max_bytes=total).nbytes == total


def test_the_protocol_module_imports_numpy_only_when_arrays_are_present() -> None:
    # The worker imports this module in every image: the stdlib only at import time.
    assert "numpy" not in vars(protocol) and "np" not in vars(protocol)


def test_result_statuses_are_the_task_statuses() -> None:
    from lute_kernel.ipc.schema import RESULT_STATUSES

    assert {s.value for s in TaskStatus} == RESULT_STATUSES


@pytest.mark.parametrize(
    ("header", "text"),
    [
        ({"rank": -1}, "log message: rank must be an integer in [0, 2**31)"),
        ({"rank": 2**31}, "log message: rank must be an integer in [0, 2**31)"),
        ({"rank": True}, "log message: rank must be an integer in [0, 2**31)"),
        ({"rank": 1.0}, "log message: rank must be an integer in [0, 2**31)"),
        ({"body": [1]}, "log message: body is a list, not an object"),
        ({"body": "text"}, "log message: body is a string, not an object"),
        ({"buffers": {}}, "log message: buffers is an object, not a list"),
        ({"buffers": None}, "log message: buffers is null, not a list"),
        ({"kind": 7}, "kind is not a string"),
        ({"extra": 1}, "header keys wrong (unknown: ['extra'], missing: [])"),
        ({"body": {"level": "INFO"}}, "log message: body has no 'message'"),
        ({"body": {"level": 20, "message": "m"}}, "log message: 'level' must be a string, not a number"),
        ({"kind": "progress", "body": {"done": "1", "total": None, "message": ""}}, "'done' must be a number or null"),
        ({"kind": "progress", "body": {"done": True, "total": 2, "message": ""}}, "'done' must be a number or null"),
        ({"kind": "result", "body": {"task_status": "BOGUS"}}, "'task_status' must be a task status, not a string"),
        ({"kind": "bye", "body": {"exit_code": 0.5}}, "'exit_code' must be an integer, not a number"),
        ({"kind": "hello", "body": {"pid": 1}}, "hello message: body has no 'python'"),
        ({"kind": "error", "body": {"type": "E", "message": None}}, "'message' must be a string, not null"),
    ],
)
def test_every_header_field_is_typed(header: Dict[str, Any], text: str) -> None:
    raw = {"v": PROTOCOL_VERSION, "kind": "log", "rank": 0, "body": LOG_BODY, "buffers": []}
    raw.update(header)
    with pytest.raises(ProtocolError) as info:
        decode([json.dumps(raw).encode()])
    assert text in str(info.value)


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (b"1e400", "the number 1e400 is not finite"),
        (b"-1e400", "the number -1e400 is not finite"),
        (b"NaN", "NaN is not a JSON number"),
        (b"Infinity", "Infinity is not a JSON number"),
        (b"9223372036854775808", "the integer 9223372036854775808 is outside [-2**63, 2**63)"),
        (b"-9223372036854775809", "the integer -9223372036854775809 is outside [-2**63, 2**63)"),
        (b"1" * 5000, "an integer with 5000 digits"),
        (b"1." + b"0" * 100, "a 102-character number"),
    ],
)
def test_numbers_are_bounded_in_the_parser(number: bytes, text: str) -> None:
    head = raw_header().replace(b'"rank": 0', b'"rank": ' + number)
    with pytest.raises(ProtocolError, match=rf"^header holds {re.escape(text)}$"):
        decode([head])


def test_the_largest_64_bit_integers_pass() -> None:
    body = {**LOG_BODY, "big": 2**63 - 1, "small": -(2**63)}
    assert decode(encode("log", body)).body == body


def test_encode_sends_non_finite_floats_as_null_and_refuses_huge_integers() -> None:
    body = {**LOG_BODY, "nan": float("nan"), "inf": np.float64("inf"), "ok": 1.5}
    assert decode(encode("log", body)).body == {**LOG_BODY, "nan": None, "inf": None, "ok": 1.5}
    with pytest.raises(ProtocolError, match=r"^the integer 9223372036854775808 does not fit in 64 bits"):
        encode("log", {**LOG_BODY, "x": [2**63]})


def test_nesting_is_bounded_on_both_ends() -> None:
    from lute_kernel.ipc.bounded_json import MAX_DEPTH

    def nested(lists: int, leaf: Any = 1) -> Any:
        value: Any = leaf
        for _ in range(lists):
            value = [value]
        return value

    # JSON levels: the header object 1, the body object 2, then the lists (an array's reference is an object).
    for fits in (nested(MAX_DEPTH - 2), nested(MAX_DEPTH - 3, np.zeros(1)), [{"a": {"b": nested(MAX_DEPTH - 5)}}]):
        body = {**LOG_BODY, "x": fits}
        assert repr(decode(encode("log", body)).body) == repr(body)
    for too_deep in (nested(MAX_DEPTH - 1), nested(MAX_DEPTH - 2, np.zeros(1)), [{"a": {"b": nested(MAX_DEPTH - 4)}}]):
        with pytest.raises(ProtocolError, match=f"^message nests lists or objects deeper than {MAX_DEPTH} levels$"):
            encode("log", {**LOG_BODY, "x": too_deep})
    deep = raw_header(body={**LOG_BODY, "x": nested(MAX_DEPTH - 1)})
    with pytest.raises(ProtocolError, match=f"^header nests lists or objects deeper than {MAX_DEPTH} levels$"):
        decode([deep])
    with pytest.raises(ProtocolError, match="deeper than"):
        decode([b"[" * 100_000 + b"]" * 100_000])


@pytest.mark.parametrize(
    ("text", "deeper_than_2"),
    [
        (b"[]", False),
        (b"[[]]", False),
        (b"[[[]]]", True),
        (b"[{}, {}, [1, 2]]", False),
        (b"[{}, {}, [1, {}]]", True),
        (b'{"a": [{"b": 1}]}', True),
        (b'["[[[[", "]]]]"]', False),  # brackets in strings do not count
        (b'["\\"[[[", 1]', False),  # nor after an escaped quote
        (b'["\\\\", [[1]]]', True),  # an escaped backslash ends before the quote
        (b"[" * 3 + b"]" * 3, True),
        (b"[] [] [] []", False),
    ],
)
def test_structure_depth_is_measured_outside_strings(text: bytes, deeper_than_2: bool) -> None:
    from lute_kernel.ipc.bounded_json import structure_depth_exceeds

    assert structure_depth_exceeds(text, limit=2) is deeper_than_2


def test_the_header_size_is_limited_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "MAX_HEADER_BYTES", 100)
    with pytest.raises(MessageTooLarge, match="header of"):
        encode("log", {**LOG_BODY, "message": "x" * 200})
    head = raw_header(body={**LOG_BODY, "message": "x" * 200})
    with pytest.raises(ProtocolError, match=rf"^header frame of {len(head)} bytes exceeds the 100-byte header limit"):
        decode([head])


def test_too_many_buffers_are_refused_on_both_ends() -> None:
    arrays = [np.zeros(1, dtype=np.uint8)] * (protocol.MAX_BUFFERS + 1)
    with pytest.raises(ProtocolError, match=f"^result message carries {len(arrays)} arrays; at most 1024 fit in one$"):
        encode("result", {"task_status": "COMPLETED", "payload": arrays})
    with pytest.raises(ProtocolError, match=f"^message of {len(arrays) + 1} frames; at most 1025 are allowed$"):
        decode([raw_header(), *[b"\x00"] * len(arrays)])


@pytest.mark.parametrize(
    ("spec", "size", "text"),
    [
        ({"dtype": "<M8[ns]", "shape": [1]}, 8, "dtype '<M8[ns]' is not a numeric dtype"),
        ({"dtype": "<U4", "shape": [1]}, 16, "dtype '<U4' is not a numeric dtype"),
        ({"dtype": "<V8", "shape": [1]}, 8, "dtype '<V8' is not a numeric dtype"),
        ({"dtype": ["<f8"], "shape": [1]}, 8, "dtype a list is not a numeric dtype"),
        ({"dtype": "<f8", "shape": [-1]}, 8, "shape must be a list of at most 32 non-negative integers"),
        ({"dtype": "<f8", "shape": [1.0]}, 8, "shape must be a list of at most 32 non-negative integers"),
        ({"dtype": "<f8", "shape": 1}, 8, "shape must be a list of at most 32 non-negative integers"),
        ({"dtype": "<f8", "shape": [1] * 33}, 8, "shape must be a list of at most 32 non-negative integers"),
        ({"dtype": "<f8", "shape": [1], "x": 1}, 8, "must be an object with exactly 'dtype' and 'shape'"),
        ({"dtype": "<f8", "shape": [2**62, 2**62]}, 8, "<f8 [4611686018427387904, 4611686018427387904] needs"),
        ({"dtype": ">c16", "shape": [2]}, 16, ">c16 [2] needs 32 bytes, got 16"),
    ],
)
def test_buffer_descriptions_are_checked_against_their_frames(spec: Dict[str, Any], size: int, text: str) -> None:
    head = raw_header(kind="progress", body={**PROGRESS, "data": {"__ndarray__": 0}}, buffers=[spec])
    with pytest.raises(ProtocolError) as info:
        decode([head, b"\x00" * size])
    assert text in str(info.value)


def test_lone_surrogates_become_replacement_characters() -> None:
    head = raw_header(body={"level": "INFO", "message": "bad \ud800 name", "\udcff": "\ud83d\ude00"})
    body = decode([head]).body
    assert body == {"level": "INFO", "message": "bad \ufffd name", "\ufffd": "\U0001f600"}
    assert all(isinstance(v, str) and v.encode("utf-8") for v in body.values())


def test_error_messages_never_echo_long_peer_text() -> None:
    with pytest.raises(ProtocolError) as info:
        decode([raw_header(kind="x" * 10_000)])
    assert len(str(info.value)) < 100
