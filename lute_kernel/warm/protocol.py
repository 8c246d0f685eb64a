"""The warm kernel's messages: one JSON object per ``SOCK_SEQPACKET`` packet, decoded strictly.

Owns the message shapes and their decoding. The server accepts connections of its own user only
(``SO_PEERCRED``), yet a garbled or hostile packet must never end it: :func:`decode_request` turns
any bytes into a typed request or a :class:`ProtocolError`, nothing else. No pickle.

Client → server: ``run`` (argv, environment, umask, start time, how its streams were set up,
resource limits; its stdin, stdout, stderr and working directory ride along as descriptors),
``signal`` (forward one to the child), ``status``, ``stop``. Server → client: ``started`` (the
child's pid), ``exit`` (its exit code), ``stale`` (the server's code changed: run cold),
``refused`` (why), ``status``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

from lute_kernel.warm.wire import (
    FORWARDED,
    MAX_PACKET,
    STREAM_NAMES,
    ProtocolError,
    decode_object,
    decode_reply,
    encode,
)


@dataclass(frozen=True)
class StreamSetup:
    """How the command's Python had set up one standard stream (the child rebuilds it the same way)."""

    encoding: str = "utf-8"
    errors: str = "strict"
    line_buffering: bool = False
    write_through: bool = False


@dataclass(frozen=True)
class RunRequest:
    """Run this command line as the command itself would (its descriptors travel with the packet)."""

    argv: List[str]
    env: Dict[str, str]
    umask: int
    process_start: Optional[float] = None
    streams: Dict[str, StreamSetup] = field(default_factory=dict)
    limits: Dict[str, Tuple[int, int]] = field(default_factory=dict)
    ignored: Tuple[int, ...] = ()
    """Forwarded signals the command ignored from its start: its child starts ignoring them."""


@dataclass(frozen=True)
class SignalRequest:
    """Pass this signal to the command's child."""

    signum: int


@dataclass(frozen=True)
class SimpleRequest:
    """``status`` or ``stop``."""

    op: str  # "status" or "stop"


Request = Union[RunRequest, SignalRequest, SimpleRequest]


def decode_request(data: bytes) -> Request:
    """Return the request in ``data`` or raise ProtocolError."""
    message = decode_object(data)
    op = message.get("op")
    if op == "run":
        return _run_request(message)
    if op == "signal":
        signum = _int(message.get("signum"), "signum")
        if signum not in FORWARDED:
            raise ProtocolError(f"signal {signum} is not one a command forwards")
        return SignalRequest(signum)
    if op in ("status", "stop"):
        return SimpleRequest(op)
    raise ProtocolError(f"unknown op {op!r}"[:200])


def _run_request(message: Dict[str, Any]) -> RunRequest:
    argv = message.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and "\0" not in a for a in argv):
        raise ProtocolError("argv must be a non-empty list of strings")
    env = message.get("env")
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and "=" not in k and "\0" not in k + v for k, v in env.items()
    ):
        raise ProtocolError("env must map names to strings")
    umask = _int(message.get("umask"), "umask")
    if not 0 <= umask <= 0o777:
        raise ProtocolError("umask out of range")
    start = message.get("process_start")
    if start is not None and (isinstance(start, bool) or not isinstance(start, (int, float)) or start != start):
        raise ProtocolError("process_start must be a number")
    return RunRequest(
        argv=list(argv),
        env=dict(env),
        umask=umask,
        process_start=None if start is None else float(start),
        streams=_streams(message.get("streams", {})),
        limits=_limits(message.get("limits", {})),
        ignored=_ignored(message.get("ignored", [])),
    )


def _ignored(raw: Any) -> Tuple[int, ...]:
    if not isinstance(raw, list) or len(raw) > len(FORWARDED):
        raise ProtocolError("ignored must be a list of forwarded signals")
    out = tuple(_int(signum, "ignored") for signum in raw)
    if not set(out) <= set(FORWARDED):
        raise ProtocolError("ignored: a signal a command does not forward")
    return out


def _streams(raw: Any) -> Dict[str, StreamSetup]:
    if not isinstance(raw, dict):
        raise ProtocolError("streams must be an object")
    out = {}
    for name, setup in raw.items():
        if name not in STREAM_NAMES or not isinstance(setup, dict):
            raise ProtocolError("streams: unknown stream")
        encoding, errors = setup.get("encoding"), setup.get("errors")
        line, through = setup.get("line_buffering", False), setup.get("write_through", False)
        if not (
            isinstance(encoding, str)
            and isinstance(errors, str)
            and isinstance(line, bool)
            and isinstance(through, bool)
        ):
            raise ProtocolError("streams: bad setup")
        out[name] = StreamSetup(encoding[:64], errors[:64], line, through)
    return out


def _limits(raw: Any) -> Dict[str, Tuple[int, int]]:
    if not isinstance(raw, dict):
        raise ProtocolError("limits must be an object")
    out = {}
    for name, pair in raw.items():
        if not (isinstance(name, str) and name.startswith("RLIMIT_") and isinstance(pair, list) and len(pair) == 2):
            raise ProtocolError("limits: bad entry")
        out[name] = (_int(pair[0], name), _int(pair[1], name))
    return out


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise ProtocolError(f"{what} must be an integer")
    return value


__all__ = [
    "FORWARDED",
    "MAX_PACKET",
    "ProtocolError",
    "Request",
    "RunRequest",
    "SignalRequest",
    "SimpleRequest",
    "StreamSetup",
    "decode_reply",
    "decode_request",
    "encode",
]
