"""The kernel's end of the socket: a ZMQ ROUTER bound to ``ipc://<run dir>/s`` or one TCP address.

Owns binding (socket limits, the private unix socket, TCP on one interface with CURVE when libzmq
has it), reading frame sets in bounded batches and handing each to ``admission`` (token first,
then the strict decode), answering the handshake's ZAP requests on TCP, replying, and a monitor
that tells when the workers' connections close (``connections``), so the executor knows no more
messages can come without waiting on a timer. The executor polls ``socket`` and ``monitor``;
nothing here blocks, and nothing a peer sends makes ``receive_ready`` raise.
"""

from __future__ import annotations

import os
import struct
from itertools import repeat
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import zmq

from lute_kernel.errors import LaunchError
from lute_kernel.ipc import tcp
from lute_kernel.ipc.admission import HANDSHAKES, INTERNAL, Admission
from lute_kernel.ipc.connections import ConnectionLedger
from lute_kernel.ipc.protocol import DEFAULT_MAX_BYTES, Message, encode

SOCKET_NAME = "s"
UNIX_PATH_MAX = 107
BATCH = 512
"""Most frame sets read per wake-up of the executor (accepted or dropped: a flood cannot hold the loop)."""
MESSAGES_PER_WAKE = 2048
"""Once this many messages are decoded, a wake-up reads no further frame set: the executor handles them
while they are still in the CPU's caches, and a wake-up's memory stays bounded (512 full batches would
be 262 144 messages). The rest wait in the socket; the caller's next poll returns at once."""
FRAME_MARGIN = 4096
"""``zmq.MAXMSGSIZE`` (per frame) is the message cap plus this: a bigger frame disconnects its sender."""
RECEIVE_HWM = 1000
"""Messages libzmq queues per connection before it stops reading that peer (backpressure)."""
_MONITOR_EVENTS = (
    zmq.EVENT_ACCEPTED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
_HANDSHAKE_FAILED = {
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "no detail",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "a protocol error",
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "a CURVE key that is not this run's",
}


def endpoint_for(run_dir: Path) -> str:
    """Return the ipc endpoint inside ``run_dir``; refuse paths over the unix socket limit."""
    path = str(run_dir / SOCKET_NAME)
    if len(path.encode()) > UNIX_PATH_MAX:
        raise LaunchError(
            f"socket path {path!r} is {len(path.encode())} bytes, over the {UNIX_PATH_MAX}-byte unix"
            " limit; set a shorter run_dir_root in the site profile"
        )
    return f"ipc://{path}"


def _source_fd(frame: Any) -> Optional[int]:
    try:
        return int(frame.get(zmq.SRCFD))
    except (zmq.ZMQError, AttributeError, TypeError, ValueError):  # libzmq without the (deprecated) option
        return None


class IpcServer:
    """A bound ROUTER plus a connection monitor, for one run.

    Attributes:
        endpoint: What workers connect to (``LUTE_IPC_ENDPOINT``).
        server_key: The CURVE public key workers must expect (``LUTE_IPC_SERVER_KEY``); "" without CURVE.
    """

    def __init__(
        self,
        run_dir: Path,
        token: str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        transport: str = "ipc",
        tcp_host: Optional[str] = None,
        curve: Optional[bool] = None,
    ) -> None:
        self.token = token
        self.max_bytes = max_bytes
        self.admission = Admission(token, max_bytes)
        self.ledger = ConnectionLedger()
        self.stopping_workers = False
        """Set by `workers_stopping`: a handshake broken off from then on is a worker the kernel stops."""
        self.server_key = ""
        self._expected_client_key = b""
        self._context = zmq.Context()
        self.socket = self._context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.MAXMSGSIZE, max_bytes + FRAME_MARGIN)
        self.socket.setsockopt(zmq.RCVHWM, RECEIVE_HWM)
        self.monitor = self.socket.get_monitor_socket(_MONITOR_EVENTS)
        try:
            self._bind(run_dir, transport, tcp_host, curve)
        except BaseException:
            self.close()  # no context or socket left behind by a launch that did not happen
            raise

    def _bind(self, run_dir: Path, transport: str, tcp_host: Optional[str], curve: Optional[bool]) -> None:
        if transport == "tcp":
            # Ranks on other nodes cannot reach a unix socket. Bind the one interface they use; with
            # CURVE only peers holding the token's key get past the handshake, and the token frame
            # authenticates every message in any case.
            address, ipv6 = tcp.bind_address(tcp_host)
            self.socket.setsockopt(zmq.IPV6, int(ipv6))
            if tcp.curve_available() if curve is None else curve:
                self.server_key = tcp.secure_server(self.socket)
                self._expected_client_key = tcp.client_public(self.token)
            try:
                self.socket.bind(tcp.endpoint(address, "*"))  # a port the system picks
            except zmq.ZMQError as exc:
                raise LaunchError(f"cannot bind a TCP port on {address}: {exc}") from None
            port = self.socket.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1]
            self.endpoint = tcp.endpoint(address, port)
        else:
            self.endpoint = endpoint_for(run_dir)
            self.socket.bind(self.endpoint)
            os.chmod(run_dir / SOCKET_NAME, 0o600)

    @property
    def peers(self) -> Dict[bytes, int]:
        """Identities bound to a rank (they said a valid hello with the token)."""
        return self.admission.peers

    @property
    def rejected(self) -> int:
        """Frame sets dropped so far (strangers, and token holders that are not a bound rank)."""
        return self.admission.tally.total

    @property
    def connected(self) -> int:
        """Worker connections (bound by a valid hello); strangers are not counted."""
        return self.ledger.connected

    @property
    def disconnected(self) -> int:
        """How many of the workers' connections have closed."""
        return self.ledger.disconnected

    def receive_ready(self, limit: int = BATCH) -> List[Tuple[bytes, Message]]:
        """Return the run's messages among up to ``limit`` waiting frame sets (non-blocking).

        A ``batch`` frame set yields each of its messages. Bounded by frame sets read (accepted or
        dropped), not messages kept, so that a Task flooding the socket, or a stranger, cannot keep
        the executor from its deadline, cancellation and pipes; and by MESSAGES_PER_WAKE decoded
        messages. The caller polls again for the rest. Everything not from a bound rank is dropped
        and tallied.
        """
        received: List[Tuple[bytes, Message]] = []
        for _ in range(limit):
            if len(received) >= MESSAGES_PER_WAKE:
                break
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            if self._expected_client_key and tcp.is_zap_request(frames):
                self._answer_zap(frames)
                continue
            known = len(self.admission.peers)
            try:
                message = self.admission.admit(frames)
            except Exception as exc:  # a bug in a check must not end the run: drop the frame set, say so once
                self.admission.tally.add(INTERNAL, f"{type(exc).__name__}: {exc}")
                continue
            if message is None:
                continue
            if len(self.admission.peers) > known:  # a new rank said hello: bind its connection
                self.ledger.bind(_source_fd(frames[1]))
            identity = bytes(frames[0].buffer)
            if message.items:  # a batch: its messages, in order, as if they had come one by one
                received.extend(zip(repeat(identity), message.items))
            else:
                received.append((identity, message))
        return received

    def _answer_zap(self, frames: List[Any]) -> None:
        reply, admitted = tcp.zap_reply(frames, self._expected_client_key)
        if not admitted:
            self.admission.tally.add(HANDSHAKES, "a CURVE key that is not this run's")
        try:
            self.socket.send_multipart(reply, zmq.NOBLOCK)
        except zmq.ZMQError:  # the handshake's pipe is gone (the peer left): nothing to answer
            pass

    def drain_monitor(self, limit: int = 4 * BATCH) -> None:
        """Account for up to ``limit`` connection events that arrived (non-blocking)."""
        for _ in range(limit):
            try:
                frames = self.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            # Monitor frame 1 is a native-endian uint16 event id then a uint32 value (libzmq 4.x);
            # parsed here because zmq.utils.monitor pulls in asyncio (~20 ms at start-up).
            event, value = struct.unpack("=HI", frames[0][:6])
            if event == zmq.EVENT_ACCEPTED:
                self.ledger.on_accepted(value)
            elif event == zmq.EVENT_DISCONNECTED:
                self.ledger.on_disconnected(value)
            elif event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL and self.stopping_workers:
                pass  # the peer went away mid-handshake because the kernel is stopping it: no stranger
            elif event in _HANDSHAKE_FAILED and event != zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self.admission.tally.add(HANDSHAKES, f"a handshake that failed with {_HANDSHAKE_FAILED[event]}")

    def workers_stopping(self) -> None:
        """The kernel is signalling its workers to stop: a handshake they break off is not a stranger's.

        A worker killed while it connects (a refused admission, a timeout or a cancel during its
        start) leaves a handshake that "failed with no detail"; counted, it would read as a
        stranger on the socket in the run's warning.
        """
        self.stopping_workers = True

    def all_disconnected(self) -> bool:
        """Return True once every worker connection has closed."""
        return self.ledger.all_disconnected()

    def rejection_note(self) -> Optional[str]:
        """One line summing up what was dropped or refused, the first time there is any; else None.

        The executor logs it once per run (e.g. as a WARNING event after the loop): it names the
        counts and the first reason per category, never a peer's bytes.
        """
        return self.admission.tally.note()

    def send(self, identity: bytes, kind: str, body: Dict[str, Any]) -> None:
        """Reply to one worker."""
        self.socket.send_multipart([identity, *encode(kind, body, max_bytes=self.max_bytes)], copy=False)

    def close(self, endpoint_path: Optional[Path] = None) -> None:
        """Close sockets and the context; remove the socket file."""
        if not self.socket.closed:
            self.socket.disable_monitor()
            self.monitor.close(linger=0)
            self.socket.close(linger=0)
            self._context.term()
        if endpoint_path is not None and endpoint_path.exists():
            endpoint_path.unlink()
