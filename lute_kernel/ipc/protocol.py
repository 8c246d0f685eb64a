"""The wire format: one JSON header frame, then one raw frame per array. Never pickle.

Owns encoding and decoding of messages. Header: ``{"v": 1, "kind": …, "rank": …, "body": …,
"buffers": [{"dtype": "<f8", "shape": [8000]}, …]}``; inside ``body`` an array is replaced by
``{"__ndarray__": i}`` pointing at buffer frame ``i``. Sizes are capped on both ends.
Runs in the worker too: stdlib only (numpy is imported only when an array is actually present).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple, Union

from lute_kernel.errors import MessageTooLarge, ProtocolError

PROTOCOL_VERSION = 1
KINDS = frozenset({"hello", "params", "log", "progress", "result", "error", "bye"})
DEFAULT_MAX_BYTES = 1 << 30
"""Default cap on one message (header plus buffers): 1 GiB."""

Frame = Union[bytes, memoryview]


@dataclass
class Message:
    """A decoded message: its kind, the sender's MPI rank and the body (arrays restored)."""

    kind: str
    body: Dict[str, Any]
    rank: int = 0
    nbytes: int = 0
    arrays: List[Any] = field(default_factory=list)


def _is_array(value: Any) -> bool:
    if not (hasattr(value, "__array_interface__") and hasattr(value, "dtype")):
        return False
    import numpy as np  # already imported by whoever made the value

    return not isinstance(value, np.generic)  # numpy scalars travel as JSON numbers


def _json_default(value: Any) -> Any:
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar
        return value.item()
    if isinstance(value, enum.Enum):
        return value.value
    return str(value)


def _extract(value: Any, buffers: List[Tuple[Dict[str, Any], memoryview]]) -> Any:
    if _is_array(value):
        import numpy as np

        array = np.asarray(value, order="C")  # not ascontiguousarray: that makes 0-d arrays 1-d
        view = memoryview(array.reshape(-1).view(np.uint8))  # type: ignore[arg-type]  # raw bytes, also empty
        buffers.append(({"dtype": array.dtype.str, "shape": list(array.shape)}, view))
        return {"__ndarray__": len(buffers) - 1}
    if isinstance(value, dict):
        return {str(k): _extract(v, buffers) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_extract(v, buffers) for v in value]
    return value


def encode(kind: str, body: Dict[str, Any], *, rank: int = 0, max_bytes: int = DEFAULT_MAX_BYTES) -> List[Frame]:
    """Return the frames of one message; raise MessageTooLarge over ``max_bytes``."""
    if kind not in KINDS:
        raise ProtocolError(f"unknown message kind {kind!r}")
    buffers: List[Tuple[Dict[str, Any], memoryview]] = []
    clean = _extract(body, buffers)
    header = {
        "v": PROTOCOL_VERSION,
        "kind": kind,
        "rank": rank,
        "body": clean,
        "buffers": [b[0] for b in buffers],
    }
    head = json.dumps(header, default=_json_default, allow_nan=True).encode()
    total = len(head) + sum(b[1].nbytes for b in buffers)
    if total > max_bytes:
        raise MessageTooLarge(
            f"{kind} message of {total} bytes exceeds the IPC size cap of {max_bytes} bytes;"
            " write large data to a file under work_dir and send its path"
        )
    return [head, *(b[1] for b in buffers)]


def _restore(value: Any, arrays: List[Any]) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and "__ndarray__" in value:
            return arrays[int(value["__ndarray__"])]
        return {k: _restore(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v, arrays) for v in value]
    return value


def decode(frames: Sequence[Any], *, max_bytes: int = DEFAULT_MAX_BYTES) -> Message:
    """Decode frames (bytes, memoryviews or zmq Frames) into a Message; validate version and kind."""
    if not frames:
        raise ProtocolError("empty message")
    views = [f.buffer if hasattr(f, "buffer") else memoryview(f) for f in frames]
    total = sum(v.nbytes for v in views)
    if total > max_bytes:
        raise MessageTooLarge(f"received a {total}-byte message; the IPC size cap is {max_bytes} bytes")
    try:
        header = json.loads(bytes(views[0]))
    except ValueError as exc:
        raise ProtocolError(f"header frame is not JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {header.get('v') if isinstance(header, dict) else None!r}")
    kind = header.get("kind")
    if kind not in KINDS:
        raise ProtocolError(f"unknown message kind {kind!r}")
    specs = header.get("buffers") or []
    if len(specs) != len(views) - 1:
        raise ProtocolError(f"{kind} message announces {len(specs)} buffers but carries {len(views) - 1}")
    arrays: List[Any] = []
    try:  # a peer's bad buffer description must be a ProtocolError, not a crash of the caller
        if specs:
            import numpy as np

            for spec, view in zip(specs, views[1:]):
                arrays.append(np.frombuffer(view, dtype=np.dtype(spec["dtype"])).reshape(spec["shape"]))
        body = _restore(header.get("body") or {}, arrays)
        rank = int(header.get("rank", 0))
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise ProtocolError(f"{kind} message has bad buffers: {type(exc).__name__}: {exc}") from None
    return Message(kind=kind, body=body, rank=rank, nbytes=total, arrays=arrays)
