"""Generated hostile frames against the decoder and the admission gate: nothing but ProtocolError, ever.

Each property is the class of input from issue 7 item 1: random bytes, deep nesting, huge numbers,
wrong types for every header and body field, wrong buffer descriptions, too many frames, oversize
messages, and wrong tokens. A decoded message, when there is one, satisfies every invariant the
executor relies on (kind, rank range, a dict body, printable text, arrays matching their specs).
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lute_kernel.errors import ProtocolError
from lute_kernel.ipc.admission import MAX_FRAMES, STRANGERS, WORKERS, Admission
from lute_kernel.ipc.bounded_json import INT_LIMIT, MAX_DEPTH, structure_depth_exceeds
from lute_kernel.ipc.protocol import KINDS, MAX_BUFFERS, PROTOCOL_VERSION, Message, decode, encode
from lute_kernel.ipc.schema import BATCHABLE, BODY_FIELDS, DTYPES

TOKEN = "0123456789abcdef0123456789abcdef"
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["\ud800", "\udfff", "a\udc80b"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)

GOOD_BODIES: Dict[str, Dict[str, Any]] = {
    "hello": {"pid": 1, "python": "3.11"},
    "params": {},
    "log": {"level": "INFO", "message": "m"},
    "progress": {"done": 1, "total": 2, "message": ""},
    "result": {"task_status": "COMPLETED", "summary": "s", "payload": None},
    "error": {"type": "E", "message": "m"},
    "bye": {"exit_code": 0},
    "batch": {"runs": [["log", [{"level": "INFO", "message": "m"}]]]},
}


def header(**fields: Any) -> Dict[str, Any]:
    kind = fields.get("kind", "log")
    base = {"v": PROTOCOL_VERSION, "kind": kind, "rank": 0, "body": dict(GOOD_BODIES.get(kind, {})), "buffers": []}
    base.update(fields)
    return base


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


def check_invariants(message: Message, frames: List[bytes]) -> None:
    """What the executor may rely on for every message decode returns."""
    assert message.kind in KINDS
    assert isinstance(message.rank, int) and 0 <= message.rank < 2**31
    assert isinstance(message.body, dict)
    assert message.nbytes == sum(len(f) for f in frames)
    for array, frame in zip(message.arrays, frames[1:]):
        assert array.dtype.str in DTYPES and array.nbytes == len(frame)

    def walk(value: Any, depth: int) -> None:
        assert depth <= MAX_DEPTH
        if isinstance(value, str):
            value.encode("utf-8")  # printable and storable: no lone surrogates
        elif isinstance(value, float):
            assert math.isfinite(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            assert -INT_LIMIT <= value < INT_LIMIT
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(key, depth)
                walk(item, depth + 1)
        elif isinstance(value, list):
            for item in value:
                walk(item, depth + 1)

    walk(message.body, 1)
    for name, (what, _) in BODY_FIELDS[message.kind].items():
        if name in message.body and what == "a string":
            assert isinstance(message.body[name], str)
    assert (message.kind == "batch") == bool(message.items)
    for item in message.items:  # a batch's messages hold what single ones do, and never arrays
        assert item.kind in BATCHABLE and item.rank == message.rank and not item.arrays
        walk(item.body, 5)  # header, its body, runs, a run, its bodies: a body is at JSON level 6
        for name, (what, _) in BODY_FIELDS[item.kind].items():
            if name in item.body and what == "a string":
                assert isinstance(item.body[name], str)


def decode_or_refuse(frames: List[bytes]) -> None:
    try:
        message = decode(frames, max_bytes=1 << 20)
    except ProtocolError:
        return
    check_invariants(message, frames)


@SETTINGS
@given(st.lists(st.binary(max_size=200), min_size=0, max_size=5))
def test_random_bytes(frames: List[bytes]) -> None:
    decode_or_refuse(frames)


@SETTINGS
@given(st.sampled_from(sorted(set(header()) | {"extra"})), json_values, st.sampled_from(sorted(KINDS)))
def test_every_header_field_with_any_value(name: str, value: Any, kind: str) -> None:
    raw = header(kind=kind)
    raw[name] = value
    decode_or_refuse([dumps(raw)])


run_bodies = st.lists(
    st.one_of(st.sampled_from([dict(b) for b in GOOD_BODIES.values()]), json_values), min_size=0, max_size=4
)


@SETTINGS
@given(
    st.lists(
        st.one_of(
            st.tuples(st.sampled_from([*sorted(KINDS), "", 1]), run_bodies).map(list),
            st.sampled_from([[k, [dict(b)]] for k, b in GOOD_BODIES.items()]),
            st.lists(json_values, max_size=3),
            json_values,
        ),
        max_size=6,
    ),
    st.integers(min_value=0, max_value=2),
)
def test_batches_of_any_runs(runs: List[Any], buffers: int) -> None:
    raw = header(kind="batch", body={"runs": runs}, buffers=[{"dtype": "|u1", "shape": [1]}] * buffers)
    decode_or_refuse([dumps(raw), *[b"x"] * buffers])


@SETTINGS
@given(st.sampled_from(sorted(KINDS)), st.data())
def test_every_body_field_with_any_value(kind: str, data: st.DataObject) -> None:
    body = dict(GOOD_BODIES[kind])
    names = sorted(set(BODY_FIELDS[kind]) | set(body) | {"__ndarray__", "data"})
    for name in data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3)):
        if data.draw(st.booleans()):
            body.pop(name, None)
        else:
            body[name] = data.draw(json_values)
    decode_or_refuse([dumps(header(kind=kind, body=body))])


def field_is_valid(what: str, value: Any) -> bool:
    """The body field rules as the ADR states them, written independently of schema's tables."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return {
        "a string": isinstance(value, str),
        "an integer": isinstance(value, int) and not isinstance(value, bool),
        "a number": number,
        "a string or null": value is None or isinstance(value, str),
        "a number or null": value is None or number,
        "a task status": value in ("PENDING", "RUNNING", "COMPLETED", "FAILED", "TIMEDOUT", "CANCELLED"),
        "any value": True,
    }[what]


@SETTINGS
@given(st.sampled_from(sorted(BATCHABLE | {"hello", "result", "error", "bye"})), st.data())
def test_body_checks_accept_exactly_the_valid_fields(kind: str, data: st.DataObject) -> None:
    body = dict(GOOD_BODIES[kind])
    for name in data.draw(st.lists(st.sampled_from(sorted(BODY_FIELDS[kind])), min_size=1, max_size=3)):
        if data.draw(st.booleans()):
            body.pop(name, None)
        else:
            body[name] = data.draw(st.one_of(scalars, st.sampled_from(["COMPLETED", "done", 3, 2.5, True])))
    # What decode sees once the JSON is parsed: no NaN, no lone surrogates, 64-bit integers.
    assume(all(_parsed_as_itself(v) for v in body.values()))
    valid = all(
        (name in body and field_is_valid(what, body[name])) or (name not in body and not required)
        for name, (what, required) in BODY_FIELDS[kind].items()
    )
    frames = [dumps(header(kind=kind, body=body))]
    try:
        decode(frames)
    except ProtocolError:
        assert not valid
    else:
        assert valid
    if kind in BATCHABLE:  # the same rules inside a batch
        try:
            decode([dumps(header(kind="batch", body={"runs": [[kind, [dict(GOOD_BODIES[kind]), body]]]}))])
        except ProtocolError:
            assert not valid
        else:
            assert valid


def _parsed_as_itself(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -INT_LIMIT <= value < INT_LIMIT
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


@SETTINGS
@given(json_values)
def test_any_json_as_the_whole_header(value: Any) -> None:
    decode_or_refuse([dumps(value)])


nesting = st.text(alphabet='[]{}"\\:,1 a', max_size=400)


@SETTINGS
@given(nesting, st.integers(min_value=MAX_DEPTH, max_value=5000))
def test_deep_and_ragged_nesting(text: str, depth: int) -> None:
    decode_or_refuse([text.encode()])
    decode_or_refuse([b"[" * depth + text.encode() + b"]" * depth])
    decode_or_refuse(
        [dumps(header()).replace(b'"body": {', b'"body": {"x": ' + b"[" * depth + b"1" + b"]" * depth + b", ")]
    )


@SETTINGS
@given(st.recursive(st.integers(0, 9), lambda inner: st.lists(inner, max_size=3), max_leaves=30))
def test_depth_scan_agrees_with_the_parsed_depth(value: Any) -> None:
    def depth_of(item: Any) -> int:
        return 1 + max((depth_of(v) for v in item), default=0) if isinstance(item, list) else 0

    for limit in (1, 2, 4):
        assert structure_depth_exceeds(json.dumps(value).encode(), limit) is (depth_of(value) > limit)


tricky_text = st.text(alphabet='[]{}"\\ ax\u00e9', max_size=8)
nested_with_text = st.recursive(
    st.one_of(st.integers(0, 9), tricky_text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(tricky_text, inner, max_size=3)),
    max_leaves=30,
)


@SETTINGS
@given(nested_with_text, st.booleans())
def test_depth_scan_ignores_brackets_quotes_and_escapes_in_strings(value: Any, ascii_only: bool) -> None:
    def depth_of(item: Any) -> int:
        if isinstance(item, dict):
            return 1 + max((depth_of(v) for v in item.values()), default=0)
        return 1 + max((depth_of(v) for v in item), default=0) if isinstance(item, list) else 0

    text = json.dumps(value, ensure_ascii=ascii_only).encode()
    for limit in (0, 1, 2, 3, 5):
        assert structure_depth_exceeds(text, limit) is (depth_of(value) > limit)


numbers = st.one_of(
    st.integers(min_value=19, max_value=6000).map(lambda n: "9" * n),
    st.sampled_from(
        ["1e400", "-1e400", "1e308", "NaN", "Infinity", "-Infinity", "-0", "1E-400", "0." + "0" * 80 + "1"]
    ),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
)


@SETTINGS
@given(numbers, st.sampled_from(["rank", "v", "body-field", "buffer-shape"]))
def test_huge_and_non_finite_numbers(number: str, where: str) -> None:
    raw = header(kind="progress", body={"done": 0, "total": None, "message": ""})
    placeholder = 424242
    if where == "body-field":
        raw["body"]["done"] = placeholder
    elif where == "buffer-shape":
        raw["buffers"] = [{"dtype": "|u1", "shape": [placeholder]}]
    else:
        raw[where] = placeholder
    text = dumps(raw).replace(str(placeholder).encode(), number.encode())
    decode_or_refuse([text, b"\x00" * 4] if where == "buffer-shape" else [text])


buffer_specs = st.one_of(
    st.fixed_dictionaries(
        {
            "dtype": st.one_of(st.sampled_from(sorted(DTYPES)), st.text(max_size=6), json_values),
            "shape": st.one_of(st.lists(st.integers(min_value=-2, max_value=2**40), max_size=4), json_values),
        }
    ),
    json_values,
)


@SETTINGS
@given(st.lists(buffer_specs, max_size=4), st.lists(st.binary(max_size=64), max_size=5), json_values)
def test_wrong_buffer_specs(specs: List[Any], frames: List[bytes], reference: Any) -> None:
    body = {"done": 0, "total": None, "message": "", "data": {"__ndarray__": reference}}
    decode_or_refuse([dumps(header(kind="progress", body=body, buffers=specs)), *frames])


@SETTINGS
@given(st.integers(min_value=MAX_BUFFERS + 1, max_value=MAX_BUFFERS + 50))
def test_too_many_frames(count: int) -> None:
    specs = [{"dtype": "|u1", "shape": [1]}] * count
    decode_or_refuse([dumps(header(buffers=specs)), *[b"\x00"] * count])


@SETTINGS
@given(st.integers(min_value=1, max_value=4096))
def test_oversize(extra: int) -> None:
    frames = [dumps(header(body={"level": "I", "message": "x" * extra}))]
    try:
        decode(frames, max_bytes=len(frames[0]) - 1)
    except ProtocolError as exc:
        assert "size cap" in str(exc)
    else:
        raise AssertionError("an oversize message was decoded")


bodies = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=10)),
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
        max_leaves=15,
    ),
    max_size=5,
)


@SETTINGS
@given(bodies, st.integers(0, 2**31 - 1))
def test_what_encode_sends_decode_takes(extra: Dict[str, Any], rank: int) -> None:
    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, list):
            return [finite(v) for v in value]
        return value

    extra = {k: v for k, v in extra.items() if k not in BODY_FIELDS["log"]}  # those are typed: tested above
    body = {**extra, "level": "INFO", "message": "m", "data": np.arange(3.0)}
    message = decode(encode("log", body, rank=rank))
    assert message.rank == rank
    np.testing.assert_array_equal(message.body.pop("data"), body.pop("data"))
    assert message.body == finite(body)  # NaN and infinities travel as null: JSON has neither


@SETTINGS
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.just(TOKEN.encode()),
            st.just(TOKEN.upper().encode()),
            st.just(dumps(header(kind="hello"))),
            st.just(dumps(header())),
        ),
        max_size=6,
    ),
    st.binary(min_size=1, max_size=8),
)
def test_admission_drops_everything_without_the_token(frames: List[bytes], identity: bytes) -> None:
    gate = Admission(TOKEN, 1 << 20)
    message = gate.admit([identity, *frames])
    if not frames or frames[0] != TOKEN.encode():
        assert message is None and gate.tally.counts == {STRANGERS: 1}
    assert len(gate.peers) <= 1
    if message is not None:
        assert message.kind == "hello" and gate.peers == {identity: message.rank}


@SETTINGS
@given(st.lists(st.binary(max_size=30), max_size=3), st.integers(0, 3))
def test_a_bound_rank_gets_errors_not_crashes(frames: List[bytes], extra_frames: int) -> None:
    gate = Admission(TOKEN, 1 << 20)
    token = TOKEN.encode()
    hello = gate.admit([b"id", token, *encode("hello", GOOD_BODIES["hello"], rank=3)])
    assert hello is not None and gate.peers == {b"id": 3}
    message = gate.admit([b"id", token, *frames, *[b""] * extra_frames])
    assert message is None or message.rank == 3
    if message is not None and message.kind == "error":
        assert set(message.body) == {"type", "message"}
    assert set(gate.tally.counts) <= {WORKERS}
    gate.admit([b"id", token, *[b"x"] * (MAX_FRAMES + 1)])
