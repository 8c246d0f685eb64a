"""The worker's end of the socket: a ZMQ DEALER that sends frames and waits for the parameters.

Owns connecting (with CURVE when the kernel gave its public key), putting the run's token in front
of every message, sending, and the bounded wait for the host's reply. Knows nothing about Tasks.

``log`` and ``progress`` messages without arrays are queued and sent by a flusher thread, as one
``batch`` frame set for everything queued while it was busy: a Task logging in a tight loop costs
the kernel one socket read and one parse per batch instead of per message, and nothing waits on a
timer (an idle flusher sends the next message at once). Every other message first sends what is
queued, so the kernel sees messages in the order the Task sent them; ``close`` sends the rest.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List, Optional, Tuple

import zmq

from lute_kernel.errors import ProtocolError
from lute_kernel.ipc import tcp
from lute_kernel.ipc.protocol import (
    BATCHABLE,
    DEFAULT_MAX_BYTES,
    MAX_BATCH,
    Message,
    batch_body,
    decode,
    encode,
    encode_batch,
    header_limit,
)

LINGER_MS = 10_000
"""How long closing the socket may wait for unsent messages (the host may be gone)."""
_forks = [0]
"""How many times this process's lineage forked into a child (bumped in the child): a client
made before a fork must not use its socket afterwards. Cheaper than ``os.getpid()`` per message."""
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))

MAX_QUEUED = 8 * MAX_BATCH
"""Messages a Task may have queued before ``send`` waits for the flusher (bounded memory)."""
BATCH_BYTES = 4 << 20
"""A batch header over this is split in two (the kernel refuses headers over its limit)."""


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
        self._fork_generation = _forks[0]
        self._sending = threading.Lock()  # held while frames go out: the socket has one user at a time
        self._queue_lock = threading.Lock()  # entered directly on the Task's path: a Condition's is a Python call
        self._queue_changed = threading.Condition(self._queue_lock)
        self._queued: List[Tuple[str, Any]] = []
        self._flusher: Optional[threading.Thread] = None
        self._closing = False
        self._batch_bytes = min(BATCH_BYTES, header_limit(max_bytes))

    def send(self, kind: str, body: Dict[str, Any]) -> None:
        """Send one message (the token frame first); arrays in ``body`` go as raw buffers without copies.

        ``log`` and ``progress`` without arrays are queued for the flusher thread; anything else
        goes out after what is queued, from the caller's thread.
        """
        if _forks[0] != self._fork_generation:  # a process the Task forked shares no socket with the kernel
            return
        if kind in BATCHABLE and not self._closing:
            clean = batch_body(body)
            if clean is not None:
                with self._queue_lock:
                    queued = self._queued
                    if len(queued) < MAX_QUEUED and self._flusher is not None:  # the common case
                        queued.append((kind, clean))
                        if len(queued) == 1:
                            self._queue_changed.notify()
                        return
                self._enqueue(kind, clean)
                return
        frames = encode(kind, body, rank=self.rank, max_bytes=self.max_bytes)
        self._send_queued_then([self._token, *frames])

    def _enqueue(self, kind: str, body: Any) -> None:
        with self._queue_changed:
            while len(self._queued) >= MAX_QUEUED:  # the kernel reads slower than the Task writes
                self._queue_changed.wait()
            self._queued.append((kind, body))
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_loop, name="lute-ipc-flusher", daemon=True)
                self._flusher.start()
            elif len(self._queued) == 1:
                self._queue_changed.notify_all()

    def _flush_loop(self) -> None:
        while True:
            with self._queue_changed:
                while not self._queued and not self._closing:
                    self._queue_changed.wait()
                if not self._queued:
                    return
            try:
                self._send_queued_then(None)
            except zmq.ZMQError:  # the socket is closing under us (the process is ending): nothing to save
                return

    def _send_queued_then(self, frames: Optional[List[Any]]) -> None:
        """Send everything queued (in batches), then ``frames`` if given; in order, one sender at a time."""
        with self._sending:
            with self._queue_changed:
                items, self._queued = self._queued, []
                self._queue_changed.notify_all()  # room again for a waiting Task
            for start in range(0, len(items), MAX_BATCH):
                self._send_items(items[start : start + MAX_BATCH])
            if frames is not None:
                self._socket.send_multipart(frames, copy=False)

    def _send_items(self, items: List[Tuple[str, Any]]) -> None:
        if len(items) == 1:
            kind, body = items[0]
            try:
                frames = encode(kind, body, rank=self.rank, max_bytes=self.max_bytes)
            except ProtocolError as exc:  # the caller has returned: say what was dropped instead
                note = {"level": "WARNING", "logger": "lute.ipc", "message": f"a {kind} message was dropped: {exc}"}
                frames = encode("log", note, rank=self.rank)
            self._socket.send_multipart([self._token, *frames])
            return
        head = encode_batch(items, rank=self.rank)
        if len(head) > self._batch_bytes:
            half = len(items) // 2
            self._send_items(items[:half])
            self._send_items(items[half:])
            return
        self._socket.send_multipart([self._token, head])

    def flush(self) -> None:
        """Send what is queued now (``send`` of any non-batched message does this first)."""
        self._send_queued_then(None)

    def receive(self, timeout_ms: Optional[int]) -> Message:
        """Wait up to ``timeout_ms`` (None: forever) for the next message from the host."""
        with self._sending:  # the flusher must not use the socket meanwhile
            if timeout_ms is not None and not self._socket.poll(timeout_ms):
                raise ProtocolError(f"no reply from the kernel within {timeout_ms / 1000:g} s")
            frames = self._socket.recv_multipart(copy=False)
        return decode(frames, max_bytes=self.max_bytes)

    def close(self) -> None:
        """Send what is queued, flush pending messages (bounded by LINGER_MS) and close."""
        if self._socket.closed:
            return
        with self._queue_changed:
            self._closing = True
            self._queue_changed.notify_all()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join(LINGER_MS / 1000)
        self._send_queued_then(None)
        self._socket.close()
        self._context.term()
