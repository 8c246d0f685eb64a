"""The wire format (v2): one JSON header frame, then one raw frame per array. Never pickle.

Owns encoding and decoding of one message. Header: ``{"v": 2, "kind": …, "rank": …, "body": …,
"buffers": [{"dtype": "<f8", "shape": [8000]}, …]}``; inside ``body`` an array is replaced by
``{"__ndarray__": i}`` pointing at buffer frame ``i``. A worker puts the run's token in a frame of
its own *before* these (``client``), and the kernel checks it before calling ``decode``
(``admission``). Decoding is strict and bounded: total size, frame count, header size, nesting depth
and numbers are limited (``bounded_json``), every field is typed (``schema``), each buffer's bytes
must match its dtype and shape; anything else is a ``ProtocolError``, never another exception.
Runs in the worker too: stdlib only (numpy is imported only when an array is actually present).
"""

from __future__ import annotations

import enum
import json
import math
from itertools import groupby
from operator import itemgetter
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from lute_kernel.errors import MessageTooLarge, ProtocolError
from lute_kernel.ipc.bounded_json import INT_LIMIT, MAX_DEPTH, load_header
from lute_kernel.ipc.schema import (
    BATCHABLE,
    KINDS,
    MAX_BATCH,
    MAX_BUFFERS,
    PROTOCOL_VERSION,
    brief,
    buffer_nbytes,
    check_batch,
    check_buffer_sizes,
    check_header,
)

__all__ = [
    "BATCH",
    "BATCHABLE",
    "DEFAULT_MAX_BYTES",
    "KINDS",
    "MAX_BATCH",
    "MAX_BUFFERS",
    "PROTOCOL_VERSION",
    "Message",
    "decode",
    "encode",
]

DEFAULT_MAX_BYTES = 1 << 30
"""Default cap on one message (header plus buffers): 1 GiB."""
MAX_HEADER_BYTES = 64 << 20
"""Cap on the JSON header frame (64 MiB, or the message cap if smaller): arrays go as raw frames."""

Frame = Union[bytes, memoryview]
BATCH = "batch"
"""The kind of a message that carries several ``log``/``progress`` messages of one rank (no arrays)."""


class Message:
    """A decoded message: its kind, the sender's MPI rank and the body (arrays restored).

    A plain class with slots, not a dataclass: a batch makes one per message it carries, and
    this is the cheapest object Python builds (no default factories).

    Attributes:
        kind: One of ``KINDS``.
        body: The message's fields.
        rank: The sender's MPI rank.
        nbytes: The frame set's size in bytes (0 for the messages of a batch).
        arrays: The numpy arrays restored from the buffer frames, in order.
        items: A ``batch`` message's messages, in the order they were sent (checked like single ones).
    """

    __slots__ = ("arrays", "body", "items", "kind", "nbytes", "rank")

    def __init__(
        self,
        kind: str,
        body: Dict[str, Any],
        rank: int = 0,
        nbytes: int = 0,
        arrays: Optional[List[Any]] = None,
        items: Optional[List[Message]] = None,
    ) -> None:
        self.kind = kind
        self.body = body
        self.rank = rank
        self.nbytes = nbytes
        self.arrays: List[Any] = [] if arrays is None else arrays
        self.items: List[Message] = [] if items is None else items

    def __repr__(self) -> str:
        return f"Message(kind={self.kind!r}, rank={self.rank}, body={brief(self.body)}, items={len(self.items)})"


BATCH_BODY_DEPTH = 6
"""The JSON level of a body inside a batch: header, its body, ``runs``, a run, its bodies, the body."""


def header_limit(max_bytes: int) -> int:
    """Largest header frame accepted under a message cap of ``max_bytes``."""
    return min(max_bytes, MAX_HEADER_BYTES)


def _numpy_kind(value: Any) -> str:
    """Return "array", "scalar" or "" (not numpy); numpy is imported already when a value has a dtype."""
    if not hasattr(value, "dtype"):
        return ""
    import numpy as np

    if isinstance(value, np.generic):
        return "scalar"
    return "array" if hasattr(value, "__array_interface__") else ""


def _json_default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    return str(value)


_ENCODER = json.JSONEncoder(default=_json_default, allow_nan=False, separators=(",", ":"), check_circular=False)
"""One encoder for every message (stateless between calls, so threads may share it), compact. No check for
circular references: it encodes only what ``_extract`` rebuilt or ``_flat_and_plain`` found flat (a cycle
there hits the depth limit first)."""


def _too_deep(depth: int) -> ProtocolError:
    return ProtocolError(f"message nests lists or objects deeper than {MAX_DEPTH} levels")


def _extract(value: Any, buffers: List[Tuple[Dict[str, Any], memoryview]], depth: int) -> Any:
    """Replace arrays by references (collecting their bytes) and check what decode will refuse.

    ``depth`` is the JSON nesting level a container here would have (the body itself is at 2).
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:  # the common leaves first: a log line is all strings
        return value
    if kind is dict:
        if depth > MAX_DEPTH:
            raise _too_deep(depth)
        return {str(k): _extract(v, buffers, depth + 1) for k, v in value.items()}
    numpy_kind = _numpy_kind(value)
    if numpy_kind == "scalar":  # a numpy scalar travels as a JSON number
        value, numpy_kind = value.item(), ""
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity, and the kernel refuses them
    if isinstance(value, int) and not isinstance(value, bool) and not -INT_LIMIT <= value < INT_LIMIT:
        raise ProtocolError(f"the integer {value} does not fit in 64 bits; send it as a string")
    if numpy_kind == "array":
        import numpy as np

        if depth > MAX_DEPTH:  # its reference is an object
            raise _too_deep(depth)
        array = np.asarray(value, order="C")  # not ascontiguousarray: that makes 0-d arrays 1-d
        view = memoryview(array.reshape(-1).view(np.uint8))  # type: ignore[arg-type]  # raw bytes, also empty
        buffers.append(({"dtype": array.dtype.str, "shape": list(array.shape)}, view))
        return {"__ndarray__": len(buffers) - 1}
    if isinstance(value, enum.Enum):
        return _extract(value.value, buffers, depth)
    if isinstance(value, (dict, list, tuple)):
        if depth > MAX_DEPTH:
            raise _too_deep(depth)
        if isinstance(value, dict):
            return {str(k): _extract(v, buffers, depth + 1) for k, v in value.items()}
        return [_extract(v, buffers, depth + 1) for v in value]
    return value


def encode(kind: str, body: Dict[str, Any], *, rank: int = 0, max_bytes: int = DEFAULT_MAX_BYTES) -> List[Frame]:
    """Return the frames of one message (without the token frame a worker puts first).

    Raises:
        MessageTooLarge: Over ``max_bytes``, or a header over ``header_limit(max_bytes)``.
        ProtocolError: An unknown kind, too many arrays, too deep nesting, an integer beyond 64 bits.
    """
    if kind not in KINDS:
        raise ProtocolError(f"unknown message kind {kind!r}")
    buffers: List[Tuple[Dict[str, Any], memoryview]] = []
    clean = _extract(body, buffers, 2)  # the header object is level 1
    if len(buffers) > MAX_BUFFERS:
        raise ProtocolError(f"{kind} message carries {len(buffers)} arrays; at most {MAX_BUFFERS} fit in one")
    header = {"v": PROTOCOL_VERSION, "kind": kind, "rank": rank, "body": clean, "buffers": [b[0] for b in buffers]}
    head = _ENCODER.encode(header).encode()
    total = len(head) + sum(b[1].nbytes for b in buffers)
    advice = "; write large data to a file under work_dir and send its path"
    if total > max_bytes:
        raise MessageTooLarge(f"{kind} message of {total} bytes exceeds the IPC size cap of {max_bytes} bytes{advice}")
    if len(head) > header_limit(max_bytes):
        raise MessageTooLarge(
            f"{kind} message header of {len(head)} bytes exceeds the {header_limit(max_bytes)}-byte header"
            f" limit (send arrays as numpy arrays){advice}"
        )
    return [head, *(b[1] for b in buffers)]


def _flat_and_plain(body: Dict[str, Any]) -> bool:
    """True for a body of string keys and JSON-ready scalars (a log record): nothing to extract."""
    for key, value in body.items():
        kind = type(value)
        if type(key) is not str:
            return False
        if kind is str or kind is bool or value is None:
            continue
        if kind is float and math.isfinite(value):
            continue
        if kind is int and -INT_LIMIT <= value < INT_LIMIT:
            continue
        return False
    return True


def batch_body(body: Dict[str, Any]) -> Any:
    """Return ``body`` as it travels inside a batch, or None when it must go alone (arrays, deep nesting).

    Inside a batch a body sits four levels deeper than in a message of its own (``runs`` list,
    run, list of bodies: level 6, not 2), so the nesting limit is checked at that depth.
    """
    if _flat_and_plain(body):
        return dict(body)  # a copy: the Task may change its dict before the flusher sends it
    buffers: List[Tuple[Dict[str, Any], memoryview]] = []
    try:
        clean = _extract(body, buffers, BATCH_BODY_DEPTH)
    except ProtocolError:
        return None
    return None if buffers else clean


def encode_batch(items: Sequence[Tuple[str, Any]], *, rank: int = 0) -> bytes:
    """Return the header frame of a ``batch`` of (kind, body from :func:`batch_body`) pairs.

    Consecutive messages of one kind travel as one run, ``[kind, [body, …]]``: the kind is
    written and checked once per run, and each message costs only its body to encode and parse.
    The caller keeps each batch within MAX_BATCH messages and the header limit.
    """
    runs = [[kind, [body for _, body in run]] for kind, run in groupby(items, key=itemgetter(0))]
    header = {"v": PROTOCOL_VERSION, "kind": BATCH, "rank": rank, "body": {"runs": runs}, "buffers": []}
    return _ENCODER.encode(header).encode()


def _restore(value: Any, arrays: List[Any]) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and "__ndarray__" in value:
            index = value["__ndarray__"]
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(arrays):
                raise ProtocolError(f"array reference {brief(index)} does not name one of {len(arrays)} buffers")
            return arrays[index]
        return {k: _restore(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v, arrays) for v in value]
    return value


def decode(frames: Sequence[Any], *, max_bytes: int = DEFAULT_MAX_BYTES) -> Message:
    """Decode frames (bytes, memoryviews or zmq Frames; no token frame) into a Message.

    Raises:
        MessageTooLarge: Over ``max_bytes`` in total.
        ProtocolError: Anything else that is not a well-formed message.
    """
    if not frames:
        raise ProtocolError("empty message")
    if len(frames) > 1 + MAX_BUFFERS:
        raise ProtocolError(f"message of {len(frames)} frames; at most {1 + MAX_BUFFERS} are allowed")
    views = [f.buffer if hasattr(f, "buffer") else memoryview(f) for f in frames]
    total = sum(v.nbytes for v in views) if len(views) > 1 else views[0].nbytes
    if total > max_bytes:
        raise MessageTooLarge(f"received a {total}-byte message; the IPC size cap is {max_bytes} bytes")
    limit = header_limit(max_bytes)
    head = bytes(views[0]) if views[0].nbytes <= limit else views[0]  # a huge one is refused uncopied
    header = load_header(head, max_header_bytes=limit)
    kind, rank, body, specs = check_header(header, len(views) - 1)
    arrays: List[Any] = []
    if specs and kind == BATCH:
        raise ProtocolError("batch message: carries buffers; a batch holds messages without arrays")
    if specs:
        import numpy as np

        check_buffer_sizes(kind, specs, [v.nbytes for v in views[1:]])

        for spec, view in zip(specs, views[1:]):
            count = buffer_nbytes(spec) // np.dtype(spec["dtype"]).itemsize
            arrays.append(np.frombuffer(view, dtype=np.dtype(spec["dtype"]), count=count).reshape(spec["shape"]))
    if arrays or (
        isinstance(head, bytes) and b"__ndarray__" in head
    ):  # the walk costs as much as the parse: only when needed
        body = _restore(body, arrays)
    if kind == BATCH:
        items = [Message(k, b, rank) for k, b in check_batch(body)]
        return Message(kind=kind, body={}, rank=rank, nbytes=total, items=items)
    return Message(kind=kind, body=body, rank=rank, nbytes=total, arrays=arrays)
