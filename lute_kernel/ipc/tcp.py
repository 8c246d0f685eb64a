"""What the TCP transport needs beyond ``ipc://``: the one address to bind, CURVE keys, ZAP answers.

Owns choosing the interface (``mpi.tcp_host`` or the host name, resolved to one address: never
``*``), the per-run CURVE key pair of the kernel, the client key derived from the run's token, and
answering the handshake's ZAP requests. The ZAP handler is not a thread: the kernel's own ROUTER
also binds ``inproc://zeromq.zap.01``, so libzmq's requests arrive on the socket the executor
already polls, and ``server`` answers them in ``receive_ready`` (the kernel stays single-threaded,
as the fork fast start needs). A peer whose CURVE key is not the one derived from the token is
refused at the handshake: it never delivers a frame, so it cannot fill the kernel's memory.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from typing import Any, List, Optional, Sequence, Tuple, Union

import zmq
import zmq.utils.z85

from lute_kernel.errors import LaunchError

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = b"lute-kernel"
_KEY_CONTEXT = b"lute-kernel ipc v2 curve client key\0"


def bind_address(host: Optional[str]) -> Tuple[str, bool]:
    """Resolve ``host`` (default: this host's name) to the one address to bind; return it and is-IPv6.

    Prefers an address that is not loopback (ranks on other nodes must reach it); a name that
    resolves only to loopback (Debian's ``127.0.1.1``) binds loopback: set ``mpi.tcp_host`` then.
    """
    name = host or socket.gethostname()
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise LaunchError(f"cannot resolve the TCP host {name!r} (mpi.tcp_host) to an address: {exc}") from None
    addresses = [str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
    if not addresses:
        raise LaunchError(f"the TCP host {name!r} (mpi.tcp_host) has no IPv4 or IPv6 address")
    ranked = sorted(addresses, key=lambda a: (ipaddress.ip_address(a.split("%")[0]).is_loopback, ":" in a))
    address = ranked[0]
    return address, ":" in address


def endpoint(address: str, port: Union[int, str]) -> str:
    """The endpoint ranks connect to (IPv6 literals in brackets)."""
    return f"tcp://[{address}]:{port}" if ":" in address else f"tcp://{address}:{port}"


def curve_available() -> bool:
    """True when this libzmq can encrypt (CURVE)."""
    return bool(zmq.has("curve"))


def client_secret(token: str) -> bytes:
    """The CURVE secret key (Z85) a worker derives from the run's token: the token proves itself twice."""
    return zmq.utils.z85.encode(hashlib.sha256(_KEY_CONTEXT + token.encode()).digest())


def client_public(token: str) -> bytes:
    """The raw 32-byte public key that goes with ``client_secret(token)`` (what ZAP requests carry)."""
    return zmq.utils.z85.decode(zmq.curve_public(client_secret(token)))


def secure_server(sock: zmq.Socket[Any]) -> str:
    """Make ``sock`` a CURVE server with a fresh key pair and bind the in-loop ZAP endpoint; return its public key."""
    public, secret = zmq.curve_keypair()
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
    sock.bind(ZAP_ENDPOINT)
    return str(public.decode("ascii"))


def secure_client(sock: zmq.Socket[Any], server_key: str, token: str) -> None:
    """Make ``sock`` a CURVE client of the kernel whose public key is ``server_key``."""
    secret = client_secret(token)
    sock.setsockopt(zmq.CURVE_SERVERKEY, server_key.encode("ascii"))
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, zmq.curve_public(secret))


def is_zap_request(frames: Sequence[Any]) -> bool:
    """True for a ZAP request (RFC 27) as libzmq sends it: identity, empty delimiter, "1.0", then 6+ frames.

    A worker's frame set starts with its token, never an empty frame, so the two cannot be confused.
    """
    return len(frames) >= 8 and _raw(frames[1]) == b"" and _raw(frames[2]) == b"1.0"


def zap_reply(frames: Sequence[Any], expected_key: bytes) -> Tuple[List[bytes], bool]:
    """Return the reply to a ZAP request and whether the peer is admitted (its key is the derived one)."""
    identity, request_id = _raw(frames[0]), _raw(frames[3])
    mechanism = _raw(frames[7])
    key = _raw(frames[8]) if len(frames) > 8 else b""
    admitted = mechanism == b"CURVE" and hmac.compare_digest(key, expected_key)
    status = (b"200", b"OK") if admitted else (b"400", b"not a worker of this run")
    return [identity, b"", b"1.0", request_id, *status, b"", b""], admitted


def _raw(frame: Any) -> bytes:
    return bytes(frame.buffer if hasattr(frame, "buffer") else frame)
