"""The warm kernel's wire: one JSON object per ``SOCK_SEQPACKET`` packet; what both sides need to speak.

Owns the packet limit, the signals a command forwards, encoding and decoding a packet into a JSON
object. Stdlib only (json, signal): the command imports it before anything else. The request shapes
the server accepts are in :mod:`lute_kernel.warm.protocol`.
"""

from __future__ import annotations

import json
import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict

MAX_PACKET = 1 << 20
"""The largest packet either side reads (an environment of ~1 MB is far beyond any real one)."""

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
"""What the command forwards to its child: what a cold ``run`` handles itself."""


class ProtocolError(ValueError):
    """A packet that is not one of the messages."""


STREAM_NAMES = ("stdin", "stdout", "stderr")


def encode(message: Dict[str, Any]) -> bytes:
    """Return one packet."""
    return json.dumps(message, separators=(",", ":")).encode()


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
    try:
        message = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(message, dict):
        raise ProtocolError("not a JSON object")
    return message


__all__ = ["FORWARDED", "MAX_PACKET", "STREAM_NAMES", "ProtocolError", "decode_object", "decode_reply", "encode"]
