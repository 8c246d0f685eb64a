"""The kernel's end of the socket: a ZMQ ROUTER bound to ``ipc://<run dir>/s``.

Owns binding, the per-run token check on ``hello``, receiving and replying, and a monitor that
tells when worker connections close (so the executor knows no more messages can come without
waiting on a timer). The executor polls the sockets this exposes; this module never blocks.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import zmq

from lute_kernel.errors import LaunchError, ProtocolError
from lute_kernel.ipc.protocol import DEFAULT_MAX_BYTES, Message, decode, encode

SOCKET_NAME = "s"
UNIX_PATH_MAX = 107
BATCH = 512
"""Most messages handled per wake-up of the executor."""


def endpoint_for(run_dir: Path) -> str:
    """Return the ipc endpoint inside ``run_dir``; refuse paths over the unix socket limit."""
    path = str(run_dir / SOCKET_NAME)
    if len(path.encode()) > UNIX_PATH_MAX:
        raise LaunchError(
            f"socket path {path!r} is {len(path.encode())} bytes, over the {UNIX_PATH_MAX}-byte unix"
            " limit; set a shorter run_dir_root in the site profile"
        )
    return f"ipc://{path}"


class IpcServer:
    """A bound ROUTER plus a connection monitor, for one run."""

    def __init__(
        self,
        run_dir: Path,
        token: str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        transport: str = "ipc",
        tcp_host: Optional[str] = None,
    ) -> None:
        self.token = token
        self.max_bytes = max_bytes
        self._context = zmq.Context()
        self.socket = self._context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.monitor = self.socket.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
        if transport == "tcp":
            # Ranks on other nodes cannot reach a unix socket. Anyone may connect to the port, but
            # only a peer that says hello with this run's token is answered or listened to.
            port = self.socket.bind_to_random_port("tcp://*")
            self.endpoint = f"tcp://{tcp_host or socket.gethostname()}:{port}"
        else:
            self.endpoint = endpoint_for(run_dir)
            self.socket.bind(self.endpoint)
            os.chmod(run_dir / SOCKET_NAME, 0o600)
        self.peers: Dict[bytes, int] = {}
        self.connected = 0
        self.disconnected = 0
        self.rejected = 0

    def receive_ready(self, limit: int = BATCH) -> List[Tuple[bytes, Message]]:
        """Return up to ``limit`` waiting messages (non-blocking); drop unauthenticated peers' messages.

        Bounded so that a Task flooding the socket cannot keep the executor from its deadline,
        cancellation and pipes: the caller polls again for the rest.
        """
        received: List[Tuple[bytes, Message]] = []
        while len(received) < limit:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return received
            identity = bytes(frames[0].buffer)
            try:
                message = decode(frames[1:], max_bytes=self.max_bytes)
            except ProtocolError as exc:
                if identity not in self.peers:
                    self.rejected += 1
                    continue
                # Our own worker sent what we cannot take (e.g. over the cap): the run fails, saying why.
                body = {"type": type(exc).__name__, "message": str(exc)}
                message = Message(kind="error", body=body, rank=self.peers[identity])
            if message.kind == "hello" and message.body.get("token") == self.token:
                self.peers[identity] = message.rank
            elif identity not in self.peers:
                # Only our own workers know the token; anything else is ignored, not trusted.
                self.rejected += 1
                continue
            received.append((identity, message))
        return received

    def drain_monitor(self) -> None:
        """Count connection events that arrived (non-blocking)."""
        while True:
            try:
                frames = self.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            # Monitor frame 1 is a native-endian uint16 event id then a uint32 value (libzmq 4.x);
            # parsed here because zmq.utils.monitor pulls in asyncio (~20 ms at start-up).
            (event,) = struct.unpack("=H", frames[0][:2])
            if event == zmq.EVENT_ACCEPTED:
                self.connected += 1
            elif event == zmq.EVENT_DISCONNECTED:
                self.disconnected += 1

    def all_disconnected(self) -> bool:
        """Return True once every accepted connection has closed."""
        return self.connected > 0 and self.disconnected >= self.connected

    def send(self, identity: bytes, kind: str, body: Dict[str, Any]) -> None:
        """Reply to one worker."""
        self.socket.send_multipart([identity, *encode(kind, body, max_bytes=self.max_bytes)], copy=False)

    def close(self, endpoint_path: Optional[Path] = None) -> None:
        """Close sockets and the context; remove the socket file."""
        self.socket.disable_monitor()
        self.monitor.close(linger=0)
        self.socket.close(linger=0)
        self._context.term()
        if endpoint_path is not None and endpoint_path.exists():
            endpoint_path.unlink()
