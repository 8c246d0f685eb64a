"""The TCP transport: one interface bound (never ``*``), CURVE with a per-run key, ZAP answered in-loop.

Real sockets on 127.0.0.1: a worker with the token gets through; peers without CURVE, with a random
CURVE key or with the wrong server key are refused at the handshake and never deliver a frame.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
import zmq

from lute_kernel.errors import LaunchError, ProtocolError
from lute_kernel.ipc import tcp
from lute_kernel.ipc.admission import HANDSHAKES
from lute_kernel.ipc.client import IpcClient
from lute_kernel.ipc.protocol import Message
from lute_kernel.ipc.server import IpcServer

TOKEN = "00112233445566778899aabbccddeeff"
HELLO = {"pid": 1, "python": "3.11"}
needs_curve = pytest.mark.skipif(not zmq.has("curve"), reason="this libzmq has no CURVE")


@pytest.fixture
def run_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="lk-tcp-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server(run_dir: Path) -> Iterator[IpcServer]:
    server = IpcServer(run_dir, TOKEN, max_bytes=64 * 1024, transport="tcp", tcp_host="127.0.0.1")
    try:
        yield server
    finally:
        server.close()


def pump(server: IpcServer, until: Any, timeout: float = 5.0) -> List[Tuple[bytes, Message]]:
    """Serve the socket (ZAP included) and the monitor until ``until(got)`` or ``timeout``."""
    got: List[Tuple[bytes, Message]] = []
    deadline = time.monotonic() + timeout
    poller = zmq.Poller()
    poller.register(server.socket, zmq.POLLIN)
    poller.register(server.monitor, zmq.POLLIN)
    while not until(got) and (remaining := deadline - time.monotonic()) > 0:
        for item, _ in poller.poll(int(remaining * 1000) + 1):
            if item is server.socket:
                got.extend(server.receive_ready())
            else:
                server.drain_monitor()
    return got


def test_tcp_binds_only_the_given_interface(server: IpcServer) -> None:
    assert server.endpoint.startswith("tcp://127.0.0.1:")
    bound = server.socket.getsockopt_string(zmq.LAST_ENDPOINT)
    assert bound == server.endpoint  # not tcp://0.0.0.0:…
    port = int(server.endpoint.rsplit(":", 1)[1])
    other = [a for a in {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)} if a != "127.0.0.1"]
    for address in other:  # another interface of this host: nothing listens there
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
            probe.settimeout(2)
            assert probe.connect_ex((address, port)) != 0


@pytest.mark.parametrize(
    ("infos", "expected"),
    [
        ([("127.0.1.1",), ("10.0.0.5",)], ("10.0.0.5", False)),
        ([("::1",), ("fd00::5",), ("127.0.0.1",)], ("fd00::5", True)),
        ([("fd00::5",), ("10.0.0.5",)], ("10.0.0.5", False)),
        ([("127.0.1.1",)], ("127.0.1.1", False)),
    ],
)
def test_the_bind_address_prefers_a_reachable_one(
    monkeypatch: pytest.MonkeyPatch, infos: List[Tuple[str]], expected: Tuple[str, bool]
) -> None:
    def fake(name: str, port: Any, **kwargs: Any) -> List[Any]:
        assert name == "node01"
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0)) for (a,) in infos]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    assert tcp.bind_address("node01") == expected
    assert tcp.endpoint(*expected[:1], 5555) == (
        f"tcp://[{expected[0]}]:5555" if expected[1] else f"tcp://{expected[0]}:5555"
    )


def test_an_unresolvable_host_is_a_launch_error(run_dir: Path) -> None:
    with pytest.raises(LaunchError, match=r"^cannot resolve the TCP host 'no-such-host\.invalid' \(mpi\.tcp_host\)"):
        IpcServer(run_dir, TOKEN, transport="tcp", tcp_host="no-such-host.invalid")


def test_ipv6_loopback_works(run_dir: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = IpcServer(run_dir, TOKEN, transport="tcp", tcp_host="::1")
    except LaunchError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert server.endpoint.startswith("tcp://[::1]:")
        client = IpcClient(server.endpoint, token=TOKEN, server_key=server.server_key)
        client.send("hello", HELLO)
        assert [m.kind for _, m in pump(server, lambda got: got)] == ["hello"]
        client.close()
    finally:
        server.close()


@needs_curve
def test_a_worker_with_the_token_gets_through_curve(server: IpcServer) -> None:
    assert len(server.server_key) == 40  # Z85 of a 32-byte public key
    client = IpcClient(server.endpoint, token=TOKEN, server_key=server.server_key, rank=1)
    try:
        client.send("hello", HELLO)
        [(identity, hello)] = pump(server, lambda got: got)
        assert (hello.kind, hello.rank) == ("hello", 1)
        server.send(identity, "params", {"x": 1})
        assert client.receive(5000).body == {"x": 1}
    finally:
        client.close()
    assert server.rejection_note() is None


def curve_stranger(server: IpcServer, server_key: bytes, keys: Tuple[bytes, bytes]) -> Tuple[Any, Any]:
    context: zmq.Context[Any] = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.CURVE_SERVERKEY, server_key)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys[0])
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys[1])
    sock.connect(server.endpoint)
    return context, sock


@needs_curve
@pytest.mark.parametrize("who", ["random-key", "wrong-server-key", "no-curve", "raw-bytes"])
def test_strangers_are_refused_at_the_handshake(server: IpcServer, who: str) -> None:
    if who == "raw-bytes":
        host, port = server.endpoint[len("tcp://") :].rsplit(":", 1)
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(b"\xff" + b"\x00" * 8 + b"\x7f" + b"GET / HTTP/1.0\r\n\r\n" * 100)
            got = pump(server, lambda got: server.admission.tally.counts.get(HANDSHAKES), 5)
    else:
        if who == "random-key":
            context, sock = curve_stranger(server, server.server_key.encode(), zmq.curve_keypair())
        elif who == "wrong-server-key":
            context, sock = curve_stranger(
                server, zmq.curve_keypair()[0], (zmq.curve_public(tcp.client_secret(TOKEN)), tcp.client_secret(TOKEN))
            )
        else:
            context = zmq.Context()
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(server.endpoint)
        try:
            for _ in range(3):
                sock.send_multipart([TOKEN.encode(), b"{}"])  # even with the token: nothing is delivered
            got = pump(server, lambda got: server.admission.tally.counts.get(HANDSHAKES), 5)
        finally:
            sock.close()
            context.term()
    assert got == []
    assert server.rejected == 0  # not one frame set reached the kernel
    if who != "wrong-server-key":  # that one fails on the client's side: the server sees only a protocol error
        assert server.admission.tally.counts.get(HANDSHAKES, 0) >= 1
    assert server.connected == 0 and server.disconnected == 0


@needs_curve
def test_a_client_without_the_server_key_cannot_speak(server: IpcServer) -> None:
    client = IpcClient(server.endpoint, token=TOKEN)  # no CURVE: refused, though it holds the token
    try:
        client.send("hello", HELLO)
        assert pump(server, lambda got: server.admission.tally.counts.get(HANDSHAKES), 5) == []
    finally:
        client._socket.setsockopt(zmq.LINGER, 0)
        client.close()


def test_without_curve_the_token_still_authenticates(run_dir: Path) -> None:
    server = IpcServer(run_dir, TOKEN, transport="tcp", tcp_host="127.0.0.1", curve=False)
    try:
        assert server.server_key == ""
        stranger = IpcClient(server.endpoint, token="e" * len(TOKEN))
        worker = IpcClient(server.endpoint, token=TOKEN)
        stranger.send("hello", HELLO)
        worker.send("hello", HELLO)
        got = pump(server, lambda got: got and server.rejected)
        assert [m.kind for _, m in got] == ["hello"] and server.rejected == 1
        for client in (stranger, worker):
            client.close()
    finally:
        server.close()


def test_a_worker_without_curve_support_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp, "curve_available", lambda: False)
    with pytest.raises(ProtocolError, match="the kernel encrypts its TCP socket"):
        IpcClient("tcp://127.0.0.1:1", token=TOKEN, server_key="x" * 40)


def test_zap_replies() -> None:
    key = tcp.client_public(TOKEN)
    assert len(key) == 32 and key == tcp.client_public(TOKEN)  # derived, stable
    request = [b"pipe", b"", b"1.0", b"7", tcp.ZAP_DOMAIN, b"10.0.0.9", b"", b"CURVE", key]
    assert tcp.is_zap_request(request)
    assert tcp.zap_reply(request, key) == ([b"pipe", b"", b"1.0", b"7", b"200", b"OK", b"", b""], True)
    wrong = [*request[:8], b"\x00" * 32]
    assert tcp.zap_reply(wrong, key) == (
        [b"pipe", b"", b"1.0", b"7", b"400", b"not a worker of this run", b"", b""],
        False,
    )
    null = [*request[:7], b"NULL"]
    assert tcp.zap_reply(null, key)[1] is False
    assert not tcp.is_zap_request([b"id", TOKEN.encode(), b"{}"])


def test_the_kernel_stays_single_threaded_with_curve(run_dir: Path) -> None:
    before = threading.active_count()
    server = IpcServer(run_dir, TOKEN, transport="tcp", tcp_host="127.0.0.1")
    try:
        assert threading.active_count() == before  # no ZAP thread: the fork fast start stays on
    finally:
        server.close()
