"""A real ZMQ round trip between IpcServer (kernel, ROUTER) and IpcClient (worker, DEALER).

Also what strangers on the socket can and cannot do: over ipc:// (wrong tokens, garbage, a rank
already bound, oversize frames, connections that come and go) and over TCP (one interface, CURVE
refusing keys that are not the run's). Generated frame sets: test_ipc_socket_strangers.py.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import pytest
import zmq

from lute_kernel.errors import LaunchError, ProtocolError
from lute_kernel.ipc.admission import STRANGERS, WORKERS
from lute_kernel.ipc.client import IpcClient
from lute_kernel.ipc.protocol import Message, encode
from lute_kernel.ipc.server import FRAME_MARGIN, SOCKET_NAME, UNIX_PATH_MAX, IpcServer, endpoint_for

TOKEN = "0123456789abcdef0123456789abcdef"
HELLO = {"pid": 1, "python": "3.11"}


def log(message: str) -> Dict[str, Any]:
    return {"level": "INFO", "message": message}


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


def connect(server: IpcServer, clients: List[IpcClient], token: str = TOKEN, **kwargs: Any) -> IpcClient:
    client = IpcClient(server.endpoint, token=token, server_key=server.server_key, **kwargs)
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
    client.send("hello", HELLO)
    [(identity, hello)] = receive(server, 1)
    assert (hello.kind, hello.rank, hello.body) == ("hello", 2, HELLO)
    assert server.peers == {identity: 2}

    server.send(identity, "params", {"task": "Test", "params": {"x": 1}})
    reply = client.receive(5000)
    assert (reply.kind, reply.rank, reply.body) == ("params", 0, {"task": "Test", "params": {"x": 1}})

    data = np.arange(100, dtype=np.float32).reshape(10, 10)
    client.send("progress", {"done": 1, "total": 2, "message": "", "data": data})
    client.send("bye", {"exit_code": 0})
    (_, progress), (_, bye) = receive(server, 2)
    assert (progress.kind, progress.rank) == ("progress", 2)
    np.testing.assert_array_equal(progress.body["data"], data)
    assert (bye.kind, bye.body) == ("bye", {"exit_code": 0})
    assert server.rejected == 0
    assert server.rejection_note() is None


def test_wrong_token_and_unannounced_peers_are_ignored(server: IpcServer, clients: List[IpcClient]) -> None:
    intruder = connect(server, clients, token="f" * len(TOKEN), rank=0)
    intruder.send("hello", HELLO)
    intruder.send("result", {"task_status": "COMPLETED"})
    short = connect(server, clients, token="short", rank=0)
    short.send("hello", HELLO)
    silent = connect(server, clients, rank=1)  # has the token, never says hello
    silent.send("log", log("no hello first"))

    good = connect(server, clients, rank=0)
    good.send("hello", HELLO)
    good.send("log", log("mine"))
    got = receive(server, 2)
    got += settle(server)
    assert [(m.kind, m.body.get("message")) for _, m in got] == [("hello", None), ("log", "mine")]
    assert server.rejected == 4
    assert len(server.peers) == 1
    note = server.rejection_note()
    assert note is not None and note.startswith("IPC socket: dropped ")  # categories in the order they came
    assert "dropped 3 frame sets from peers without this run's token" in note
    assert "dropped 1 frame sets from holders of the token that are not a bound rank (first: a log message" in note
    assert server.rejection_note() is None  # once per run


def raw_dealer(endpoint: str) -> Tuple[zmq.Context[Any], zmq.Socket[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    raw = context.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(endpoint)
    return context, raw


def test_garbage_from_an_unknown_peer_is_rejected_not_parsed(server: IpcServer) -> None:
    context, raw = raw_dealer(server.endpoint)
    try:
        raw.send_multipart([b"\x80\x04 not json"])
        raw.send_multipart([b'{"v": 2, "kind": "hello", "rank": 1e400, "body": [], "buffers": 7}'])
        raw.send_multipart([b"[" * 50_000])  # under the frame limit (64 KiB here): read, dropped unparsed
        raw.send_multipart([b"x" * len(TOKEN), b"[" * 50_000])
        assert settle(server, 0.5) == []
        assert server.rejected == 4
        assert server.admission.tally.first == {STRANGERS: "a 11-byte first frame where the token goes"}
    finally:
        raw.close()
        context.term()


def test_a_second_hello_and_a_claimed_rank_are_dropped(server: IpcServer, clients: List[IpcClient]) -> None:
    first = connect(server, clients, rank=0)
    first.send("hello", HELLO)
    [(identity, _)] = receive(server, 1)
    usurper = connect(server, clients, rank=0)  # with the token, but rank 0 is bound already
    usurper.send("hello", HELLO)
    usurper.send("result", {"task_status": "FAILED"})
    first.send("hello", HELLO)  # a second hello from a bound rank
    other = connect(server, clients, rank=1)
    other.send("hello", HELLO)
    receive(server, 1)
    context, raw = raw_dealer(server.endpoint)  # rank 1's identity is bound: another claiming rank 0 in-message
    try:
        raw.send_multipart([TOKEN.encode(), *encode("hello", HELLO, rank=0)])
        first.send("log", log("still mine"))
        got = receive(server, 1) + settle(server)
    finally:
        raw.close()
        context.term()
    assert [(i, m.kind, m.body.get("message")) for i, m in got] == [(identity, "log", "still mine")]
    assert sorted(server.peers.values()) == [0, 1]
    assert server.admission.tally.counts == {WORKERS: 4}


def test_a_message_claiming_another_rank_is_dropped(server: IpcServer, clients: List[IpcClient]) -> None:
    client = connect(server, clients, rank=1)
    client.send("hello", HELLO)
    receive(server, 1)
    client.rank = 0
    client.send("result", {"task_status": "COMPLETED"})
    assert settle(server) == []
    assert server.admission.tally.first[WORKERS] == "rank 1's connection sent a message as rank 0"


def test_an_oversized_message_from_our_worker_is_reported_as_an_error(
    server: IpcServer, clients: List[IpcClient]
) -> None:
    client = connect(server, clients, rank=3)  # the worker side does not know the host's smaller cap
    client.send("hello", HELLO)
    receive(server, 1)
    arrays = [np.zeros(40 * 1024, dtype=np.uint8)] * 2  # each frame under the cap, the message over it
    client.send("progress", {"done": 1, "total": None, "message": "", "data": arrays})
    client.send("progress", {"done": 1, "total": None, "message": "", "data": arrays[0]})
    [(_, message), (_, second)] = receive(server, 2)
    assert message.kind == "error"
    assert message.rank == 3
    assert message.body["type"] == "MessageTooLarge"
    assert "the IPC size cap is 65536 bytes" in message.body["message"]
    assert second.kind == "progress"  # under the cap: the connection is still good


def test_a_frame_over_the_cap_disconnects_its_sender_before_it_is_read(server: IpcServer) -> None:
    context, raw = raw_dealer(server.endpoint)
    try:
        raw.send_multipart([TOKEN.encode(), b"x" * (server.max_bytes + FRAME_MARGIN + 1)])
        assert settle(server, 0.5) == []
        assert server.rejected == 0  # never reached the kernel: libzmq dropped the connection
        deadline = time.monotonic() + 5
        while server.ledger.accepted < 1 and time.monotonic() < deadline:
            server.monitor.poll(100)
            server.drain_monitor()
        assert server.ledger.accepted >= 1 and server.disconnected == 0  # a stranger's close is not a rank's
    finally:
        raw.close()
        context.term()


def test_client_receive_times_out(server: IpcServer, clients: List[IpcClient]) -> None:
    client = connect(server, clients)
    with pytest.raises(ProtocolError, match=r"^no reply from the kernel within 0.05 s$"):
        client.receive(50)


def test_monitor_counts_connections_and_disconnections(server: IpcServer) -> None:
    stranger_context, stranger = raw_dealer(server.endpoint)
    stranger.send_multipart([b"hello?"])
    client = IpcClient(server.endpoint, token=TOKEN)
    client.send("hello", HELLO)
    receive(server, 1)
    stranger.close()
    stranger_context.term()
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
    assert server.server_key == ""  # no CURVE on the unix socket: its permissions keep others out


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


def test_a_failing_check_drops_the_frame_set_instead_of_raising(
    server: IpcServer, clients: List[IpcClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = connect(server, clients)
    client.send("hello", HELLO)
    receive(server, 1)

    def broken(frames: Any) -> Any:
        raise TypeError("a bug")

    monkeypatch.setattr(server.admission, "admit", broken)
    client.send("log", log("lost"))
    assert settle(server) == []
    assert server.rejection_note() == (
        "IPC socket: dropped 1 frame sets that the checks failed on (a kernel bug: please report it)"
        " (first: TypeError: a bug)"
    )
