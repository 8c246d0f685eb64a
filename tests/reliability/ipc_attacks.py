"""What a stranger sends to a run's socket: one function per class of attack, over ipc:// or TCP.

Each attack takes the run's endpoint (and the kernel's CURVE public key, which is no secret) and
returns how many bytes it pushed. None knows the run's token. They speak ZMTP through pyzmq, or
raw bytes through a plain socket (garbage, a hand-made greeting announcing a 2 GiB frame, floods of
connections). Everything is imported at module load: the test forks and drops to another uid
before calling one, and that uid may not read the interpreter's library folders.
"""

from __future__ import annotations

import encodings.idna  # noqa: F401 - host names resolve through it; loaded before dropping to another uid
import json
import random
import socket
import struct
from typing import Any, Callable, Dict, List, Sequence

import zmq

WRONG_TOKEN = b"0" * 32
SEND_TIMEOUT_MS = 2000


def _header(kind: str, body: Dict[str, Any], rank: int = 0) -> bytes:
    return json.dumps({"v": 2, "kind": kind, "rank": rank, "body": body, "buffers": []}).encode()


FORGED = [
    _header("hello", {"pid": 1, "python": "3"}),
    _header("result", {"task_status": "COMPLETED", "summary": "forged by a stranger", "payload": None}),
    _header("error", {"type": "Forged", "message": "forged by a stranger"}),
    _header("bye", {"exit_code": 0}),
]
MALFORMED = [
    b"[" * 200_000,
    b'{"v": 2, "kind": "hello", "rank": 1e400, "body": {}, "buffers": []}',
    b'{"v": 2, "kind": "log", "rank": 0, "body": [1], "buffers": "x"}',
    b'{"v": 2, "kind": "log", "rank": ' + b"9" * 100_000 + b', "body": {}, "buffers": []}',
    b'{"v": 2, "kind": "progress", "rank": 0, "body": {"done": NaN}, "buffers": [{"dtype": "|O", "shape": [-1]}]}',
    b"\xff\xfe\x00garbage",
]


def _dealer(endpoint: str, server_key: str, curve: bool) -> Any:
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)
    if curve and server_key:  # the server's public key is known; a client key of the stranger's own
        public, secret = zmq.curve_keypair()
        sock.setsockopt(zmq.CURVE_SERVERKEY, server_key.encode())
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    sock.connect(endpoint)
    return context, sock


def _send_sets(endpoint: str, server_key: str, sets: Sequence[Sequence[bytes]], curve: bool = True) -> int:
    context, sock = _dealer(endpoint, server_key, curve)
    sent = refused = 0
    try:
        for frames in sets:
            try:
                sock.send_multipart(list(frames), copy=False)
                sent += sum(len(f) for f in frames)
                refused = 0
            except zmq.Again:  # never connected (CURVE refused it), or between reconnects after an oversize frame
                refused += 1
                if refused == 2:
                    break
    finally:
        sock.close()
        context.term()
    return sent


def _raw_connect(endpoint: str) -> socket.socket:
    if endpoint.startswith("ipc://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(endpoint[len("ipc://") :])
        return sock
    host, port = endpoint[len("tcp://") :].rsplit(":", 1)
    return socket.create_connection((host.strip("[]"), int(port)), timeout=5)


def _raw_send(endpoint: str, chunks: Sequence[bytes]) -> int:
    sent = 0
    try:
        with _raw_connect(endpoint) as sock:
            for chunk in chunks:
                sock.sendall(chunk)
                sent += len(chunk)
    except PermissionError:  # another user: the run directory (0700) and socket (0600) keep us out
        raise
    except OSError:  # the kernel closed the connection on us: what it should do
        pass
    return sent


def zmtp_greeting() -> bytes:
    """A ZMTP 3.0 NULL greeting and READY command of a DEALER, made by hand."""
    greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
    ready = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
    return greeting + b"\x04" + bytes([len(ready)]) + ready


def random_bytes(endpoint: str, server_key: str) -> int:
    """Non-ZMTP garbage on raw connections."""
    rng = random.Random(5)
    return sum(_raw_send(endpoint, [rng.randbytes(rng.randint(1, 70_000))]) for _ in range(20))


def announce_2gib_frame(endpoint: str, server_key: str) -> int:
    """A hand-made greeting, then a frame header announcing 2 GiB (only 1 MiB follows)."""
    return _raw_send(endpoint, [zmtp_greeting(), b"\x02" + struct.pack(">Q", 2**31), b"\x00" * (1 << 20)])


def endless_message(endpoint: str, server_key: str) -> int:
    """A hand-made greeting, then 64 MiB of 1 MiB 'more' frames that never end (TCP: refused at the greeting)."""
    frame = b"\x03" + struct.pack(">Q", 1 << 20) + b"\x00" * (1 << 20)
    return _raw_send(endpoint, [zmtp_greeting(), *[frame] * 64])


def forged_messages(endpoint: str, server_key: str) -> int:
    """Well-formed v2 messages claiming rank 0 (a result, an error, a bye), with a wrong or no token."""
    return _send_sets(endpoint, server_key, [[WRONG_TOKEN, h] for h in FORGED] + [[h] for h in FORGED] * 10)


def malformed_frames(endpoint: str, server_key: str) -> int:
    """Deep nesting, 1e400, 100 000-digit numbers, wrong types, bad dtypes, bad UTF-8 after a wrong token."""
    return _send_sets(endpoint, server_key, [[WRONG_TOKEN, m] for m in MALFORMED] * 20)


def too_many_frames(endpoint: str, server_key: str) -> int:
    """Messages of 1 500 frames."""
    return _send_sets(endpoint, server_key, [[WRONG_TOKEN, FORGED[1], *[b"\x00" * 64] * 1500]] * 10)


def oversize_frames(endpoint: str, server_key: str, max_bytes: int = 0) -> int:
    """Frames just under the kernel's cap (read, dropped unparsed), then ones over it (never read)."""
    under = [[WRONG_TOKEN, b"\x00" * (max_bytes - 64)]] * 64
    over = [[WRONG_TOKEN, b"\x00" * (max_bytes + 8192)]] * 4
    return _send_sets(endpoint, server_key, under + over)


def empty_frames(endpoint: str, server_key: str) -> int:
    """Empty frames, an empty token frame, a lone identity-looking frame."""
    return _send_sets(endpoint, server_key, [[b""], [b"", b""], [b"", FORGED[0]], [b"\x00"]] * 50)


def plain_zmq_without_curve(endpoint: str, server_key: str) -> int:
    """A ZMQ peer that does not speak CURVE (on TCP the handshake fails; on ipc it is a wrong token)."""
    return _send_sets(endpoint, server_key, [[WRONG_TOKEN, h] for h in FORGED] * 5, curve=False)


def connection_flood(endpoint: str, server_key: str) -> int:
    """Hundreds of connections opened at once, some with a greeting, then all closed."""
    opened: List[socket.socket] = []
    try:
        for i in range(300):
            try:
                sock = _raw_connect(endpoint)
            except PermissionError:
                raise
            except OSError:  # out of descriptors or a full backlog: enough
                break
            opened.append(sock)
            if i % 3 == 0:
                try:
                    sock.sendall(zmtp_greeting())
                except OSError:
                    pass
    finally:
        for sock in opened:
            sock.close()
    return len(opened)


ATTACKS: Dict[str, Callable[..., int]] = {
    "random bytes": random_bytes,
    "2 GiB frame announced": announce_2gib_frame,
    "endless multipart message": endless_message,
    "forged result/error/bye": forged_messages,
    "malformed frames": malformed_frames,
    "1 500-frame messages": too_many_frames,
    "frames at and over the size cap": oversize_frames,
    "empty frames": empty_frames,
    "ZMQ without CURVE": plain_zmq_without_curve,
    "connection flood": connection_flood,
}


def can_connect(endpoint: str) -> bool:
    """Whether a plain connection to the endpoint is allowed at all (another uid on a unix socket: no)."""
    try:
        _raw_connect(endpoint).close()
    except PermissionError:
        return False
    return True


def run_attack(name: str, endpoint: str, server_key: str, max_bytes: int) -> Dict[str, Any]:
    """Run one attack by name; report whether it could connect and the bytes (or connections) it pushed."""
    attack = ATTACKS[name]
    report: Dict[str, Any] = {"connects": can_connect(endpoint), "pushed": None}
    try:
        if attack is oversize_frames:
            report["pushed"] = oversize_frames(endpoint, server_key, max_bytes)
        else:
            report["pushed"] = attack(endpoint, server_key)
    except PermissionError:
        pass
    return report
