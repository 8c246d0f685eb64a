"""A real ZMQ round trip between IpcServer (kernel, ROUTER) and IpcClient (worker, DEALER)."""

from __future__ import annotations

import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import numpy as np
import pytest
import zmq

from lute_kernel.errors import LaunchError, ProtocolError
from lute_kernel.ipc.client import IpcClient
from lute_kernel.ipc.protocol import Message
from lute_kernel.ipc.server import SOCKET_NAME, UNIX_PATH_MAX, IpcServer, endpoint_for

TOKEN = "0123456789abcdef"


@pytest.fixture
def run_dir() -> Iterator[Path]:
    # Not tmp_path: pytest's folders can push the socket path over the 107-byte unix limit.
    path = Path(tempfile.mkdtemp(prefix="lk-ipc-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server(run_dir: Path) -> Iterator[IpcServer]:
    server = IpcServer(run_dir, TOKEN, max_bytes=64 * 1024)
    try:
        yield server
    finally:
        server.close(run_dir / SOCKET_NAME)


@pytest.fixture
def clients() -> Iterator[List[IpcClient]]:
    made: List[IpcClient] = []
    try:
        yield made
    finally:
        for client in made:
            client._socket.setsockopt(zmq.LINGER, 0)
            client.close()


def connect(server: IpcServer, clients: List[IpcClient], **kwargs: int) -> IpcClient:
    client = IpcClient(server.endpoint, **kwargs)
    clients.append(client)
    return client


def receive(server: IpcServer, count: int, timeout: float = 5.0) -> List[Tuple[bytes, Message]]:
    """Collect ``count`` accepted messages (fails after ``timeout``)."""
    got: List[Tuple[bytes, Message]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"received {len(got)} of {count} messages"
        if server.socket.poll(int(remaining * 1000) + 1):
            got.extend(server.receive_ready())
    return got


def settle(server: IpcServer, seconds: float = 0.3) -> List[Tuple[bytes, Message]]:
    """Collect whatever arrives within ``seconds`` (for checking that nothing is accepted)."""
    got: List[Tuple[bytes, Message]] = []
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        if server.socket.poll(int(remaining * 1000) + 1):
            got.extend(server.receive_ready())
    return got


def test_hello_with_the_token_then_params_reply_and_messages(server: IpcServer, clients: List[IpcClient]) -> None:
    client = connect(server, clients, rank=2)
    client.send("hello", {"token": TOKEN, "pid": 1})
    [(identity, hello)] = receive(server, 1)
    assert (hello.kind, hello.rank, hello.body) == ("hello", 2, {"token": TOKEN, "pid": 1})
    assert server.peers == {identity: 2}

    server.send(identity, "params", {"task": "Test", "params": {"x": 1}})
    reply = client.receive(5000)
    assert (reply.kind, reply.rank, reply.body) == ("params", 0, {"task": "Test", "params": {"x": 1}})

    data = np.arange(100, dtype=np.float32).reshape(10, 10)
    client.send("progress", {"done": 1, "total": 2, "data": data})
    client.send("bye", {"exit_code": 0})
    (_, progress), (_, bye) = receive(server, 2)
    assert (progress.kind, progress.rank) == ("progress", 2)
    np.testing.assert_array_equal(progress.body["data"], data)
    assert (bye.kind, bye.body) == ("bye", {"exit_code": 0})
    assert server.rejected == 0


def test_wrong_token_and_unannounced_peers_are_ignored(server: IpcServer, clients: List[IpcClient]) -> None:
    intruder = connect(server, clients, rank=0)
    intruder.send("hello", {"token": "not-the-token"})
    intruder.send("result", {"task_status": "COMPLETED"})
    silent = connect(server, clients, rank=1)
    silent.send("log", {"message": "no hello first"})

    good = connect(server, clients, rank=0)
    good.send("hello", {"token": TOKEN})
    good.send("log", {"message": "mine"})
    got = receive(server, 2)
    got += settle(server)
    assert [(m.kind, m.body.get("message")) for _, m in got] == [("hello", None), ("log", "mine")]
    assert server.rejected == 3
    assert len(server.peers) == 1


def test_garbage_from_an_unknown_peer_is_rejected_not_raised(server: IpcServer, run_dir: Path) -> None:
    context = zmq.Context()
    raw = context.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    try:
        raw.connect(server.endpoint)
        raw.send_multipart([b"\x80\x04 not json"])
        raw.send_multipart([b'{"v": 99, "kind": "hello", "body": {"token": "%s"}}' % TOKEN.encode()])
        assert settle(server, 0.5) == []
        assert server.rejected == 2
    finally:
        raw.close()
        context.term()


def test_an_oversized_message_from_our_worker_is_reported_as_an_error(
    server: IpcServer, clients: List[IpcClient]
) -> None:
    client = connect(server, clients, rank=3)  # the worker side does not know the host's smaller cap
    client.send("hello", {"token": TOKEN})
    receive(server, 1)
    client.send("progress", {"done": 1, "data": np.zeros(100 * 1024, dtype=np.uint8)})
    [(_, message)] = receive(server, 1)
    assert message.kind == "error"
    assert message.rank == 3
    assert message.body["type"] == "MessageTooLarge"
    assert "the IPC size cap is 65536 bytes" in message.body["message"]


def test_client_receive_times_out(server: IpcServer, clients: List[IpcClient]) -> None:
    client = connect(server, clients)
    with pytest.raises(ProtocolError, match=r"^no reply from the kernel within 0.05 s$"):
        client.receive(50)


def test_monitor_counts_connections_and_disconnections(server: IpcServer) -> None:
    client = IpcClient(server.endpoint)
    client.send("hello", {"token": TOKEN})
    receive(server, 1)
    deadline = time.monotonic() + 5
    while server.connected < 1 and time.monotonic() < deadline:
        server.monitor.poll(100)
        server.drain_monitor()
    assert (server.connected, server.disconnected, server.all_disconnected()) == (1, 0, False)
    client.close()
    while not server.all_disconnected() and time.monotonic() < deadline:
        server.monitor.poll(100)
        server.drain_monitor()
    assert (server.connected, server.disconnected, server.all_disconnected()) == (1, 1, True)


def test_no_connection_is_not_all_disconnected(server: IpcServer) -> None:
    server.drain_monitor()
    assert server.all_disconnected() is False


def test_socket_file_is_private_and_removed_on_close(run_dir: Path) -> None:
    server = IpcServer(run_dir, TOKEN)
    socket_path = run_dir / SOCKET_NAME
    assert server.endpoint == f"ipc://{socket_path}"
    assert stat.S_ISSOCK(socket_path.stat().st_mode)
    assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
    server.close(socket_path)
    assert not socket_path.exists()
    assert list(run_dir.iterdir()) == []


def test_socket_path_limit() -> None:
    at_limit = Path("/" + "a" * (UNIX_PATH_MAX - 3))  # "/" + name + "/s" == 107 bytes
    assert endpoint_for(at_limit) == f"ipc://{at_limit}/s"
    over = Path("/" + "a" * (UNIX_PATH_MAX - 2))
    with pytest.raises(LaunchError) as info:
        endpoint_for(over)
    assert str(info.value) == (
        f"socket path '{over}/s' is 108 bytes, over the 107-byte unix limit;"
        " set a shorter run_dir_root in the site profile"
    )


def test_a_long_run_dir_is_refused_before_binding(run_dir: Path) -> None:
    deep = run_dir / ("d" * 110)
    deep.mkdir()
    with pytest.raises(LaunchError, match="over the 107-byte unix limit"):
        IpcServer(deep, TOKEN)
    assert list(deep.iterdir()) == []
