"""The worker's batching of log/progress messages: nothing lost, nothing reordered, nothing stuck.

A real IpcClient against a real IpcServer: a flood arrives complete and in order (and in fewer
frame sets than messages), a message that must go alone (arrays, a result) keeps its place among
queued ones, a lone message is delivered without waiting for more, a queued message too big for
the socket becomes a warning, a process the Task forked sends nothing, and close sends the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lute_kernel.errors import ProtocolError
from lute_kernel.ipc.bounded_json import MAX_DEPTH
from lute_kernel.ipc.client import IpcClient
from lute_kernel.ipc.protocol import MAX_BATCH, Message, batch_body, decode, encode_batch
from lute_kernel.ipc.server import MESSAGES_PER_WAKE, SOCKET_NAME, IpcServer

TOKEN = "0123456789abcdef0123456789abcdef"
HELLO = {"pid": 1, "python": "3.11"}


class Pair:
    """A bound server and a client that has said hello."""

    def __init__(self, max_bytes: int = 1 << 20) -> None:
        self.run_dir = Path(tempfile.mkdtemp(prefix="lk-batch-"))
        self.server = IpcServer(self.run_dir, TOKEN, max_bytes=max_bytes)
        self.client = IpcClient(self.server.endpoint, token=TOKEN, max_bytes=max_bytes)
        self.frame_sets = 0
        self.client.send("hello", HELLO)
        assert [m.kind for m in self.receive(1)] == ["hello"]

    def receive(self, count: int, timeout_ms: int = 10_000) -> List[Message]:
        got: List[Message] = []
        while len(got) < count:
            assert self.server.socket.poll(timeout_ms), f"only {len(got)} of {count} messages arrived"
            batch = self.server.receive_ready(limit=1)
            self.frame_sets += 1
            got.extend(message for _, message in batch)
        return got

    def close(self) -> None:
        self.client.close()
        self.server.close(self.run_dir / SOCKET_NAME)
        shutil.rmtree(self.run_dir, ignore_errors=True)


@pytest.fixture
def pair() -> Iterator[Pair]:
    made = Pair()
    try:
        yield made
    finally:
        made.close()


def log(text: str) -> Any:
    return {"level": "INFO", "message": text}


def test_a_flood_arrives_complete_in_order_and_batched(pair: Pair) -> None:
    count = 20_000
    for i in range(count):
        pair.client.send("log", log(f"line {i}"))
    pair.client.send("bye", {"exit_code": 0})
    got = pair.receive(count + 1)
    assert [m.body.get("message") for m in got[:-1]] == [f"line {i}" for i in range(count)]
    assert got[-1].kind == "bye" and len(got) == count + 1
    assert pair.frame_sets < count / 4  # batched, not one frame set per message


def test_a_lone_message_is_delivered_without_waiting_for_more(pair: Pair) -> None:
    pair.client.send("log", log("alone"))
    [message] = pair.receive(1, timeout_ms=5_000)
    assert message.body["message"] == "alone" and message.rank == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["log", "progress", "array", "result"]), min_size=1, max_size=60))
def test_messages_that_go_alone_keep_their_place(pair: Pair, kinds: List[str]) -> None:
    sent: List[Tuple[str, str]] = []
    for i, kind in enumerate(kinds):
        text = f"m{i}"
        if kind == "log":
            pair.client.send("log", log(text))
        elif kind == "progress":
            pair.client.send("progress", {"done": i, "total": None, "message": text})
        elif kind == "array":  # progress with an array cannot be batched
            pair.client.send("progress", {"done": i, "total": None, "message": text, "data": np.arange(3)})
            kind = "progress"
        else:
            pair.client.send("result", {"task_status": "COMPLETED", "summary": text})
        sent.append((kind, text))
    got = pair.receive(len(sent))
    assert [(m.kind, m.body.get("message", m.body.get("summary"))) for m in got] == sent


def test_a_queued_message_too_big_becomes_a_warning() -> None:
    small = Pair(max_bytes=64 * 1024)
    try:
        small.client.send("log", log("x" * 100_000))
        small.client.send("log", log("after"))
        got = small.receive(2)
        assert got[0].body["level"] == "WARNING" and "dropped" in got[0].body["message"]
        assert got[1].body["message"] == "after"
    finally:
        small.close()


def test_close_sends_what_is_queued() -> None:
    made = Pair()
    try:
        for i in range(2_000):
            made.client.send("log", log(f"q{i}"))
        made.client.close()
        got = made.receive(2_000)
        assert got[-1].body["message"] == "q1999"
    finally:
        made.server.close(made.run_dir / SOCKET_NAME)
        shutil.rmtree(made.run_dir, ignore_errors=True)


def test_a_forked_process_sends_nothing(pair: Pair) -> None:
    pid = os.fork()
    if pid == 0:  # the child: its send must neither reach the kernel nor hang
        pair.client.send("log", log("from the child"))
        os._exit(0)
    os.waitpid(pid, 0)
    pair.client.send("log", log("from the parent"))
    [message] = pair.receive(1)
    assert message.body["message"] == "from the parent"
    assert not pair.server.socket.poll(200)


def test_a_batch_round_trips_and_is_refused_with_arrays() -> None:
    items = [("log", batch_body(log(f"b{i}"))) for i in range(MAX_BATCH)]
    message = decode([encode_batch(items, rank=3)])
    assert [m.body["message"] for m in message.items] == [f"b{i}" for i in range(MAX_BATCH)]
    assert {m.rank for m in message.items} == {3}
    assert batch_body({"level": "INFO", "message": "m", "data": np.zeros(2)}) is None
    with pytest.raises(ProtocolError, match="1 to"):
        decode([encode_batch(items + items[:1])])  # over MAX_BATCH
    with pytest.raises(ProtocolError, match="buffers"):
        decode([encode_batch(items[:2]), b"x"])  # a batch with a buffer frame


batchable = st.one_of(
    st.builds(lambda text: ("log", {"level": "INFO", "message": text}), st.text(max_size=20)),
    st.builds(
        lambda done, text: ("progress", {"done": done, "total": None, "message": text}),
        st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False)),
        st.text(max_size=20),
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(batchable, min_size=1, max_size=MAX_BATCH), st.integers(0, 2**31 - 1))
def test_a_batch_keeps_every_message_and_its_order(items: List[Tuple[str, Any]], rank: int) -> None:
    clean = [(kind, batch_body(body)) for kind, body in items]
    head = encode_batch(clean, rank=rank)
    runs = json.loads(head)["body"]["runs"]
    assert len(runs) == 1 + sum(a[0] != b[0] for a, b in zip(items, items[1:]))  # one run per change of kind
    message = decode([head])
    assert [(m.kind, m.body, m.rank) for m in message.items] == [(k, b, rank) for k, b in items]


def deep(levels: int) -> Any:
    """A value of ``levels`` nested lists (0: a number)."""
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def test_a_body_as_deep_as_a_batch_allows_travels_in_one_and_a_deeper_one_alone(pair: Pair) -> None:
    # In a batch a body is at JSON level 6, alone at 2: a field's value may nest 58 lists in a batch.
    fits = {"level": "INFO", "message": "fits", "extra": deep(MAX_DEPTH - 6)}
    deeper = {"level": "INFO", "message": "deeper", "extra": deep(MAX_DEPTH - 5)}
    assert batch_body(fits) is not None and batch_body(deeper) is None
    assert decode([encode_batch([("log", batch_body(fits)), ("log", batch_body(fits))])]).items[1].body == fits
    for i in range(50):  # interleaved with queued ones: the deeper ones go alone, in their place
        pair.client.send("log", fits if i % 3 else deeper)
    got = pair.receive(50)
    assert [m.body["message"] for m in got] == ["fits" if i % 3 else "deeper" for i in range(50)]


@pytest.mark.parametrize(
    ("runs", "match"),
    [
        ([], "non-empty list"),
        ([["log", []]], "non-empty list"),
        ([["log"]], "a kind and a list"),
        ([["result", [{"task_status": "COMPLETED"}]]], "cannot travel in a batch"),
        ([["log", [{"level": "INFO"}]]], "no 'message'"),
        ([["log", [{"level": "INFO", "message": "m", "time": True}]]], "'time' must be a number"),
        ([["log", ["text"]]], "not an object"),
        (
            [
                ["log", [{"level": "I", "message": "m"}] * 300],
                ["progress", [{"done": 1, "total": 2, "message": ""}] * 213],
            ],
            "1 to 512",
        ),
    ],
)
def test_malformed_runs_are_refused_saying_why(runs: Any, match: str) -> None:
    head = json.dumps({"v": 2, "kind": "batch", "rank": 0, "body": {"runs": runs}, "buffers": []}).encode()
    with pytest.raises(ProtocolError, match=match):
        decode([head])


def test_a_wake_up_stops_reading_once_enough_messages_are_decoded(pair: Pair) -> None:
    count = 3 * MESSAGES_PER_WAKE
    for i in range(count):
        pair.client.send("log", log(f"w{i}"))
    pair.client.send("bye", {"exit_code": 0})
    got: List[Message] = []
    sizes: List[int] = []
    while not got or got[-1].kind != "bye":
        assert pair.server.socket.poll(10_000), f"only {len(got)} of {count + 1} messages arrived"
        batch = pair.server.receive_ready()
        sizes.append(len(batch))
        got.extend(message for _, message in batch)
    assert max(sizes) < MESSAGES_PER_WAKE + MAX_BATCH  # stops after the frame set that reached the bound
    assert [m.body.get("message") for m in got[:-1]] == [f"w{i}" for i in range(count)]
