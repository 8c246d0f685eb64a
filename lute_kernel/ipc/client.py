"""The worker's end of the socket: a ZMQ DEALER that sends frames and waits for the parameters.

Owns connecting (with CURVE when the kernel gave its public key), putting the run's token in front
of every message, sending, and the bounded wait for the host's reply. Knows nothing about Tasks.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import zmq

from lute_kernel.errors import ProtocolError
from lute_kernel.ipc import tcp
from lute_kernel.ipc.protocol import DEFAULT_MAX_BYTES, Message, decode, encode

LINGER_MS = 10_000
"""How long closing the socket may wait for unsent messages (the host may be gone)."""


class IpcClient:
    """Connects to the kernel's ROUTER and speaks the protocol as one MPI rank.

    Args:
        endpoint: ``LUTE_IPC_ENDPOINT``.
        token: ``LUTE_IPC_TOKEN``: sent as the first frame of every message.
        rank: This process's MPI rank.
        max_bytes: ``LUTE_IPC_MAX_BYTES``: messages over it fail here, with advice, not at the kernel.
        server_key: ``LUTE_IPC_SERVER_KEY``: the kernel's CURVE public key (TCP); empty or None: no CURVE.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        token: str,
        rank: int = 0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        server_key: Optional[str] = None,
    ) -> None:
        self.rank = rank
        self.max_bytes = max_bytes
        self._token = token.encode()
        if server_key and not tcp.curve_available():
            raise ProtocolError(
                "the kernel encrypts its TCP socket (CURVE) but this environment's libzmq cannot;"
                " install a pyzmq built with CURVE in the image"
            )
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, LINGER_MS)
        # A fixed, unguessable identity: a reconnect keeps its rank binding, and the ROUTER refuses
        # a second connection that claims it. Identities starting with a zero byte are libzmq's own.
        self._socket.setsockopt(zmq.ROUTING_ID, b"w" + os.urandom(15))
        if endpoint.startswith("tcp://["):
            self._socket.setsockopt(zmq.IPV6, 1)
        if server_key:
            tcp.secure_client(self._socket, server_key, token)
        self._socket.connect(endpoint)

    def send(self, kind: str, body: Dict[str, Any]) -> None:
        """Send one message (the token frame first); arrays in ``body`` go as raw buffers without copies."""
        frames = encode(kind, body, rank=self.rank, max_bytes=self.max_bytes)
        self._socket.send_multipart([self._token, *frames], copy=False)

    def receive(self, timeout_ms: Optional[int]) -> Message:
        """Wait up to ``timeout_ms`` (None: forever) for the next message from the host."""
        if timeout_ms is not None and not self._socket.poll(timeout_ms):
            raise ProtocolError(f"no reply from the kernel within {timeout_ms / 1000:g} s")
        return decode(self._socket.recv_multipart(copy=False), max_bytes=self.max_bytes)

    def close(self) -> None:
        """Flush pending messages (bounded by LINGER_MS) and close."""
        self._socket.close()
        self._context.term()
