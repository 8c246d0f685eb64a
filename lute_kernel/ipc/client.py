"""The worker's end of the socket: a ZMQ DEALER that sends frames and waits for the parameters.

Owns connecting, sending and the bounded wait for the host's reply. Knows nothing about Tasks.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import zmq

from lute_kernel.errors import ProtocolError
from lute_kernel.ipc.protocol import DEFAULT_MAX_BYTES, Message, decode, encode

LINGER_MS = 10_000
"""How long closing the socket may wait for unsent messages (the host may be gone)."""


class IpcClient:
    """Connects to the kernel's ROUTER and speaks the protocol as one MPI rank."""

    def __init__(self, endpoint: str, *, rank: int = 0, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.rank = rank
        self.max_bytes = max_bytes
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, LINGER_MS)
        self._socket.connect(endpoint)

    def send(self, kind: str, body: Dict[str, Any]) -> None:
        """Send one message; arrays in ``body`` go as raw buffers without copies."""
        frames = encode(kind, body, rank=self.rank, max_bytes=self.max_bytes)
        self._socket.send_multipart(frames, copy=False)

    def receive(self, timeout_ms: Optional[int]) -> Message:
        """Wait up to ``timeout_ms`` (None: forever) for the next message from the host."""
        if timeout_ms is not None and not self._socket.poll(timeout_ms):
            raise ProtocolError(f"no reply from the kernel within {timeout_ms / 1000:g} s")
        return decode(self._socket.recv_multipart(copy=False), max_bytes=self.max_bytes)

    def close(self) -> None:
        """Flush pending messages (bounded by LINGER_MS) and close."""
        self._socket.close()
        self._context.term()
