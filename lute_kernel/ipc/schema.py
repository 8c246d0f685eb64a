"""What a well-formed header holds: every field's type, per-kind bodies, buffer descriptions.

Owns the checks ``protocol.decode`` applies to a parsed header, each raising ``ProtocolError`` with
the field's name. Pure functions over parsed JSON values; no frames, no parsing, no numpy (buffer
sizes are computed from the dtype string). A body may carry keys beyond the ones checked here (a
newer worker may add some); the executor reads only the checked ones.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

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


def _is_number(value: Any) -> bool:
    return isinstance(value, float) or _is_int(value)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


_IS: Mapping[str, Callable[[Any], bool]] = {
    _STR: _is_str,
    _INT: _is_int,
    _NUMBER: _is_number,
    _STR + _OPTIONAL: lambda value: value is None or isinstance(value, str),
    _NUMBER + _OPTIONAL: lambda value: value is None or _is_number(value),
    "a task status": lambda value: isinstance(value, str) and value in RESULT_STATUSES,
}
_CHECKS = {
    kind: [(name, _IS[what], what, required) for name, (what, required) in fields.items() if what != _ANY]
    for kind, fields in BODY_FIELDS.items()
}


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
    for name, valid, what, required in _CHECKS[kind]:
        if name not in body:
            if required:
                raise ProtocolError(f"{kind} message: body has no {name!r}")
            continue
        if not valid(body[name]):
            raise ProtocolError(f"{kind} message: {name!r} must be {what}, not {_kind_of(body[name])}")


def check_batch(body: Mapping[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
    """Check a ``batch`` body (``{"messages": [{"kind": …, "body": …}, …]}``); return its (kind, body) pairs."""
    items = body.get("messages")
    if not isinstance(items, list) or not 0 < len(items) <= MAX_BATCH:
        raise ProtocolError(f"batch message: 'messages' must be a list of 1 to {MAX_BATCH} messages")
    checked: List[Tuple[str, Dict[str, Any]]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or item.keys() != {"kind", "body"}:
            raise ProtocolError(f"batch message {index}: must be an object with exactly 'kind' and 'body'")
        kind, inner = item["kind"], item["body"]
        if not isinstance(kind, str) or kind not in BATCHABLE:
            raise ProtocolError(f"batch message {index}: kind {brief(kind)} cannot travel in a batch")
        if not isinstance(inner, dict):
            raise ProtocolError(f"batch message {index}: body is {_kind_of(inner)}, not an object")
        check_body(kind, inner)
        checked.append((kind, inner))
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
