"""The warm kernel's wire: one JSON object per ``SOCK_SEQPACKET`` packet; what both sides need to speak.

Owns the packet limit, the signals a command forwards, encoding and decoding a packet into a JSON
object. The command imports it before anything else, so what it needs before its request is sent
comes from C modules alone: ``signal``, ``json`` and ``socket`` import enum, re and collections
(~15 ms of a warm command's ~50). :func:`encode` writes what ``json.dumps`` writes with compact
separators (its own C string encoder); decoding, done once the request is on its way, is
``json.loads``. The request shapes the server accepts are in :mod:`lute_kernel.warm.protocol`.
"""

from __future__ import annotations

from _json import encode_basestring_ascii as _quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List

_signal: Any = __import__("_signal")  # the C core of ``signal`` (which builds its enums on import)

MAX_PACKET = 1 << 20
"""The largest packet either side reads (an environment of ~1 MB is far beyond any real one)."""

FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT)
"""What the command forwards to its child: what a cold ``run`` handles itself."""


class ProtocolError(ValueError):
    """A packet that is not one of the messages."""


STREAM_NAMES = ("stdin", "stdout", "stderr")


def encode(message: Dict[str, Any]) -> bytes:
    """Return one packet: ``json.dumps(message, separators=(",", ":"))``, without importing json.

    Takes what the messages hold (dicts with string keys, lists and tuples, strings, ints, bools,
    None, finite floats); anything else is a TypeError, NaN and infinities a ValueError.
    """
    out: List[str] = []
    _put(message, out)
    return "".join(out).encode()


def _put(value: Any, out: List[str]) -> None:
    if isinstance(value, str):
        out.append(_quote(value))
    elif value is None or value is True or value is False:
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("JSON has no NaN or infinity")
        out.append(float.__repr__(value))
    elif isinstance(value, dict):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"a JSON object's keys are strings, not {type(key).__name__}")
            out.append("," if index else "")
            out.append(_quote(key))
            out.append(":")
            _put(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            out.append("," if index else "")
            _put(item, out)
        out.append("]")
    else:
        raise TypeError(f"not JSON: {type(value).__name__}")


def decode_reply(data: bytes) -> Dict[str, Any]:
    """Return a server reply as a dict with a string ``op`` (ProtocolError otherwise)."""
    message = decode_object(data)
    if not isinstance(message.get("op"), str):
        raise ProtocolError("a reply without an op")
    return message


def decode_object(data: bytes) -> Dict[str, Any]:
    """Return the JSON object in one packet (ProtocolError for anything else)."""
    if len(data) > MAX_PACKET:
        raise ProtocolError("packet too large")
    import json

    try:
        message = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(message, dict):
        raise ProtocolError("not a JSON object")
    return message


__all__ = ["FORWARDED", "MAX_PACKET", "STREAM_NAMES", "ProtocolError", "decode_object", "decode_reply", "encode"]
