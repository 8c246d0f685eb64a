"""What a well-formed header holds: every field's type, per-kind bodies, buffer descriptions.

Owns the checks ``protocol.decode`` applies to a parsed header, each raising ``ProtocolError`` with
the field's name. Pure functions over parsed JSON values; no frames, no parsing, no numpy (buffer
sizes are computed from the dtype string). A body may carry keys beyond the ones checked here (a
newer worker may add some); the executor reads only the checked ones.
"""

from __future__ import annotations

import math
from typing import Any, Dict, FrozenSet, List, Mapping, NoReturn, Optional, Sequence, Tuple

from lute_kernel.errors import ProtocolError

PROTOCOL_VERSION = 2
KINDS = frozenset({"hello", "params", "log", "progress", "result", "error", "bye", "batch"})
BATCHABLE = frozenset({"log", "progress"})
"""Kinds a worker may send several of in one ``batch`` message (they carry no arrays there)."""
MAX_BATCH = 512
"""Most messages one ``batch`` holds."""
HEADER_KEYS = frozenset({"v", "kind", "rank", "body", "buffers"})
RANK_LIMIT = 1 << 31
MAX_BUFFERS = 1024
"""Most arrays (raw frames) one message may carry."""
MAX_DIMS = 32
RESULT_STATUSES = frozenset({"PENDING", "RUNNING", "COMPLETED", "FAILED", "TIMEDOUT", "CANCELLED"})
"""``lute_kernel.task.TaskStatus`` values (a unit test keeps the two equal; task.py needs pydantic)."""


def _numeric_dtypes() -> frozenset[str]:
    names = {"|b1", "|i1", "|u1"}
    for order in "<>":
        names.update(f"{order}{code}" for code in ("i2", "i4", "i8", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"))
    return frozenset(names)


DTYPES = _numeric_dtypes()
"""numpy ``dtype.str`` values a buffer may have: booleans, integers, floats and complex numbers."""

_STR, _INT, _NUMBER, _ANY = "a string", "an integer", "a number", "any value"
_OPTIONAL = " or null"
BODY_FIELDS: Mapping[str, Mapping[str, Tuple[str, bool]]] = {
    # kind -> field -> (what it must be, required)
    "hello": {"pid": (_INT, True), "python": (_STR, True)},
    "params": {},
    "log": {"level": (_STR, True), "message": (_STR, True), "logger": (_STR, False), "time": (_NUMBER, False)},
    "progress": {
        "done": (_NUMBER + _OPTIONAL, True),
        "total": (_NUMBER + _OPTIONAL, True),
        "message": (_STR, True),
        "data": (_ANY, False),
    },
    "result": {
        "task_status": ("a task status", True),
        "summary": (_ANY, False),
        "payload": (_ANY, False),
        "impl_schemas": (_STR + _OPTIONAL, False),
    },
    "error": {"type": (_STR, True), "message": (_STR, True), "traceback": (_STR + _OPTIONAL, False)},
    "bye": {"exit_code": (_INT, True)},
    "batch": {},
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_NONE = type(None)
_TYPES: Mapping[str, FrozenSet[type]] = {
    # Exact types: parsed JSON holds nothing else, and bool (a subclass of int) is not a number here.
    _STR: frozenset({str}),
    _INT: frozenset({int}),
    _NUMBER: frozenset({int, float}),
    _STR + _OPTIONAL: frozenset({str, _NONE}),
    _NUMBER + _OPTIONAL: frozenset({int, float, _NONE}),
    "a task status": frozenset({str}),
}
_VALUES: Mapping[str, FrozenSet[str]] = {"a task status": RESULT_STATUSES}
"""Fields whose type is not enough: the values allowed."""
_MISSING = object()
"""What ``dict.get`` returns for an absent field: its type is allowed for optional fields."""


def _compile(what: str, required: bool) -> Tuple[FrozenSet[type], Optional[FrozenSet[object]]]:
    types, values = _TYPES[what], _VALUES.get(what)
    if required:
        return types, values
    return types | {type(_MISSING)}, None if values is None else values | {_MISSING}


_CHECKS = {
    kind: [
        (name, *_compile(what, required), what, required) for name, (what, required) in fields.items() if what != _ANY
    ]
    for kind, fields in BODY_FIELDS.items()
}
"""kind -> (field, allowed types, allowed values or None, what it must be, required): one lookup, one set test."""


def check_header(header: Any, frames: int) -> Tuple[str, int, Dict[str, Any], List[Dict[str, Any]]]:
    """Check a parsed header against the frames that came with it; return kind, rank, body, specs.

    Args:
        header: The parsed JSON of the header frame.
        frames: How many buffer frames followed the header.
    """
    if not isinstance(header, dict):
        raise ProtocolError(f"header is {_kind_of(header)}, not an object")
    version = header.get("v")
    if not _is_int(version) or version != PROTOCOL_VERSION:
        shown = brief(version) if isinstance(version, (int, float, str, type(None))) else _kind_of(version)
        raise ProtocolError(f"unsupported protocol version {shown}")
    if header.keys() != HEADER_KEYS:
        extra, missing = sorted(set(header) - HEADER_KEYS), sorted(HEADER_KEYS - set(header))
        raise ProtocolError(f"header keys wrong (unknown: {brief(extra)}, missing: {missing})")
    kind = header["kind"]
    if not isinstance(kind, str) or kind not in KINDS:
        raise ProtocolError(f"unknown message kind {brief(kind)}" if isinstance(kind, str) else "kind is not a string")
    rank = header["rank"]
    if not _is_int(rank) or not 0 <= rank < RANK_LIMIT:
        raise ProtocolError(f"{kind} message: rank must be an integer in [0, 2**31)")
    body = header["body"]
    if not isinstance(body, dict):
        raise ProtocolError(f"{kind} message: body is {_kind_of(body)}, not an object")
    check_body(kind, body)
    specs = header["buffers"]
    if not isinstance(specs, list):
        raise ProtocolError(f"{kind} message: buffers is {_kind_of(specs)}, not a list")
    if len(specs) != frames:
        raise ProtocolError(f"{kind} message announces {len(specs)} buffers but carries {frames}")
    for index, spec in enumerate(specs):
        check_buffer_spec(spec, f"{kind} message buffer {index}")
    return kind, rank, body, specs


def check_body(kind: str, body: Mapping[str, Any]) -> None:
    """Check the fields a ``kind`` message's body must (or may) have."""
    for name, types, values, what, _ in _CHECKS[kind]:
        value = body.get(name, _MISSING)
        if type(value) not in types or (values is not None and value not in values):
            _refuse(kind, name, value, what)


def _refuse(kind: str, name: str, value: Any, what: str) -> NoReturn:
    if value is _MISSING:
        raise ProtocolError(f"{kind} message: body has no {name!r}")
    raise ProtocolError(f"{kind} message: {name!r} must be {what}, not {_kind_of(value)}")


def check_batch(body: Mapping[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
    """Check a ``batch`` body (``{"runs": [[kind, [body, …]], …]}``); return its (kind, body) pairs, in order.

    A run holds one or more messages of one batchable kind; the batch holds 1 to MAX_BATCH in all.
    Each body is checked as ``check_body`` would (the loop is inlined: this runs once per message).
    """
    runs = body.get("runs")
    if type(runs) is not list or not runs:
        raise ProtocolError("batch message: 'runs' must be a non-empty list of [kind, [body, ...]] runs")
    checked: List[Tuple[str, Dict[str, Any]]] = []
    append = checked.append
    for index, run in enumerate(runs):
        if type(run) is not list or len(run) != 2:
            raise ProtocolError(f"batch run {index}: must be a list of a kind and a list of bodies")
        kind, bodies = run
        if type(kind) is not str or kind not in BATCHABLE:
            raise ProtocolError(f"batch run {index}: kind {brief(kind)} cannot travel in a batch")
        if type(bodies) is not list or not bodies or len(checked) + len(bodies) > MAX_BATCH:
            raise ProtocolError(f"batch run {index}: bodies must be a non-empty list; a batch holds 1 to {MAX_BATCH}")
        checks = _CHECKS[kind]
        for inner in bodies:
            if type(inner) is not dict:
                raise ProtocolError(f"batch run {index}: a body is {_kind_of(inner)}, not an object")
            for name, types, values, what, _ in checks:
                value = inner.get(name, _MISSING)
                if type(value) not in types or (values is not None and value not in values):
                    _refuse(kind, name, value, what)
            append((kind, inner))
    return checked


def check_buffer_spec(spec: Any, where: str) -> None:
    """Check one ``{"dtype": …, "shape": […]}`` description."""
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape"}:
        raise ProtocolError(f"{where}: must be an object with exactly 'dtype' and 'shape'")
    if not isinstance(spec["dtype"], str) or spec["dtype"] not in DTYPES:
        shown = brief(spec["dtype"]) if isinstance(spec["dtype"], str) else _kind_of(spec["dtype"])
        raise ProtocolError(f"{where}: dtype {shown} is not a numeric dtype")
    shape = spec["shape"]
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(_is_int(n) and n >= 0 for n in shape):
        raise ProtocolError(f"{where}: shape must be a list of at most {MAX_DIMS} non-negative integers")


def buffer_nbytes(spec: Mapping[str, Any]) -> int:
    """Bytes a checked buffer description needs: elements times the item size in its dtype string."""
    itemsize = int(spec["dtype"][2:])
    return int(math.prod(spec["shape"])) * itemsize


def check_buffer_sizes(kind: str, specs: Sequence[Mapping[str, Any]], sizes: Sequence[int]) -> None:
    """Every buffer frame must hold exactly the bytes its description needs."""
    for index, (spec, size) in enumerate(zip(specs, sizes)):
        needed = buffer_nbytes(spec)
        if needed != size:
            raise ProtocolError(
                f"{kind} message buffer {index}: {spec['dtype']} {spec['shape']} needs {needed} bytes, got {size}"
            )


def brief(value: Any, limit: int = 60) -> str:
    """``repr`` cut short: a peer's text never grows an error message beyond ``limit``."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind_of(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    for cls, name in names.items():
        if isinstance(value, cls):
            return name
    return "a number" if isinstance(value, (int, float)) else type(value).__name__
