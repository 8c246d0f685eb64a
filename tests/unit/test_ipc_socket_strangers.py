"""Generated hostile frame sets from a stranger against a real bound IpcServer, between a worker's messages.

For every generated case (random bytes, wrong tokens, valid-looking headers, deep nesting, huge
numbers, too many frames, frames over the size limit) over ipc://, TCP with CURVE and plain TCP:
``receive_ready`` never raises, nothing the stranger sent is delivered, and the worker's next
message still arrives, in order.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lute_kernel.ipc.admission import HANDSHAKES
from lute_kernel.ipc.client import IpcClient
from lute_kernel.ipc.protocol import encode
from lute_kernel.ipc.server import FRAME_MARGIN, SOCKET_NAME, IpcServer

TOKEN = "fedcba9876543210fedcba9876543210"
MAX_BYTES = 64 * 1024
HELLO = {"pid": 1, "python": "3.11"}


class Setup:
    """A server, its worker (hello said) and a stranger's raw DEALER."""

    def __init__(self, transport: str) -> None:
        self.run_dir = Path(tempfile.mkdtemp(prefix="lk-str-"))
        tcp = transport != "ipc"
        self.server = IpcServer(
            self.run_dir,
            TOKEN,
            max_bytes=MAX_BYTES,
            transport="tcp" if tcp else "ipc",
            tcp_host="127.0.0.1",
            curve=transport == "tcp-curve",
        )
        self.worker = IpcClient(self.server.endpoint, token=TOKEN, server_key=self.server.server_key)
        self.context: zmq.Context[Any] = zmq.Context()
        self.stranger = self.context.socket(zmq.DEALER)
        self.stranger.setsockopt(zmq.LINGER, 0)
        self.stranger.connect(self.server.endpoint)
        self.sent = 0
        self.worker.send("hello", HELLO)
        [(self.identity, _)] = self.wait_for(1)

    def wait_for(self, count: int) -> List[Tuple[bytes, Any]]:
        got: List[Tuple[bytes, Any]] = []
        poller = zmq.Poller()
        poller.register(self.server.socket, zmq.POLLIN)
        poller.register(self.server.monitor, zmq.POLLIN)
        while len(got) < count:
            events = dict(poller.poll(10_000))
            assert events, f"the worker's message did not arrive ({len(got)} of {count})"
            if self.server.monitor in events:
                self.server.drain_monitor()
            if self.server.socket in events:
                got.extend(self.server.receive_ready())
        return got

    def close(self) -> None:
        self.stranger.close()
        self.context.term()
        self.worker._socket.setsockopt(zmq.LINGER, 0)
        self.worker.close()
        self.server.close(self.run_dir / SOCKET_NAME)
        shutil.rmtree(self.run_dir, ignore_errors=True)


@pytest.fixture(scope="module", params=["ipc", "tcp-curve", "tcp-plain"])
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    made = Setup(request.param)
    try:
        yield made
    finally:
        made.close()


def header(**fields: Any) -> bytes:
    base: Dict[str, Any] = {"v": 2, "kind": "result", "rank": 0, "body": {"task_status": "COMPLETED"}, "buffers": []}
    base.update(fields)
    return json.dumps(base).encode()


tokens = st.one_of(
    st.binary(max_size=40),
    st.just(b""),
    st.binary(min_size=len(TOKEN), max_size=len(TOKEN)),
    st.just(TOKEN.upper().encode()),
    st.just(TOKEN[:-1].encode() + (b"1" if TOKEN.endswith("0") else b"0")),  # one character off
)
headers = st.one_of(
    st.binary(max_size=300),
    st.just(header()),
    st.just(header(kind="hello", rank=5, body=HELLO)),
    st.integers(100, 20_000).map(lambda n: b"[" * n),
    st.sampled_from([b'{"v": 2, "rank": 1e400}', b'{"v": 2, "body": [1]}', b'{"buffers": "x"}', b"9" * 6000]),
)
frame_sets = st.one_of(
    st.lists(st.binary(max_size=100), min_size=1, max_size=6),
    st.tuples(tokens, headers, st.lists(st.binary(max_size=50), max_size=3)).map(lambda t: [t[0], t[1], *t[2]]),
    st.tuples(tokens, st.integers(1026, 1200)).map(lambda t: [t[0], header(), *[b"\0"] * t[1]]),
    st.tuples(tokens, st.sampled_from([MAX_BYTES - 1, MAX_BYTES + FRAME_MARGIN + 1])).map(
        lambda t: [t[0], b"x" * t[1]]
    ),
    st.just([b"", *encode("hello", HELLO, rank=0)]),  # a hello with an empty token frame
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(frame_sets, min_size=1, max_size=4))
def test_a_stranger_never_crashes_nor_speaks_and_the_worker_still_gets_through(
    setup: Setup, cases: List[List[bytes]]
) -> None:
    for frames in cases:
        try:  # over CURVE the stranger never completes a handshake: its DEALER has no peer to queue for
            setup.stranger.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            pass
    setup.sent += 1
    marker = f"worker message {setup.sent}"
    setup.worker.send("log", {"level": "INFO", "message": marker})
    got = setup.wait_for(1)
    assert [(identity, m.kind, m.body.get("message")) for identity, m in got] == [(setup.identity, "log", marker)]
    assert setup.server.peers == {setup.identity: 0}
    assert setup.server.connected == 1 and setup.server.disconnected == 0


def test_what_the_stranger_sent_was_dropped_and_noted_once(setup: Setup) -> None:
    # Runs after the generated cases on the same server (module-scoped fixture, same parameter).
    setup.server.drain_monitor()
    counts = setup.server.admission.tally.counts
    if setup.server.server_key:  # CURVE: refused at the handshake, not one frame set read
        assert counts.get(HANDSHAKES, 0) >= 1 and setup.server.rejected == 0
    else:
        assert setup.server.rejected >= 1  # some were sent while a reconnect was under way (oversize frames)
    note = setup.server.rejection_note()
    assert note is not None and note.startswith("IPC socket: ")
    assert setup.server.rejection_note() is None
