"""The admission gate and the connection ledger: exact decisions, counts and the one-line note."""

from __future__ import annotations

from typing import Any, List

import pytest

from lute_kernel.ipc import admission as admission_module
from lute_kernel.ipc.admission import HANDSHAKES, STRANGERS, WORKERS, Admission, Tally
from lute_kernel.ipc.connections import ConnectionLedger
from lute_kernel.ipc.protocol import encode

TOKEN = "abcdefabcdefabcdefabcdefabcdefab"
HELLO = {"pid": 1, "python": "3.11"}


def frames(identity: bytes, kind: str, body: Any, rank: int = 0, token: str = TOKEN) -> List[Any]:
    return [identity, token.encode(), *encode(kind, body, rank=rank)]


def test_the_token_is_checked_before_anything_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("decoded a frame set without the token")

    monkeypatch.setattr(admission_module, "decode", no_decoding)
    gate = Admission(TOKEN, 1 << 20)
    assert gate.admit([b"id"]) is None
    assert gate.admit([b"id", b"short", b"[[[["]) is None
    assert gate.admit([b"id", b"x" * len(TOKEN), b"{}"]) is None
    assert gate.tally.counts == {STRANGERS: 3}
    assert gate.tally.first == {STRANGERS: "no frame after the identity"}


def test_compare_digest_does_the_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: List[Any] = []

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return a == b

    monkeypatch.setattr(admission_module.hmac, "compare_digest", spy)
    Admission(TOKEN, 1 << 20).admit(frames(b"id", "hello", HELLO))
    assert calls == [(TOKEN.encode(), TOKEN.encode())]


def test_hello_binds_identity_and_rank_for_the_run() -> None:
    gate = Admission(TOKEN, 1 << 20)
    assert gate.admit(frames(b"a", "log", {"level": "I", "message": "early"})) is None  # before hello
    hello = gate.admit(frames(b"a", "hello", HELLO, rank=2))
    assert hello is not None and (hello.kind, hello.rank) == ("hello", 2)
    assert gate.peers == {b"a": 2} and gate.ranks == {2: b"a"}
    assert gate.admit(frames(b"a", "hello", HELLO, rank=3)) is None  # a second hello
    assert gate.admit(frames(b"b", "hello", HELLO, rank=2)) is None  # rank 2 is taken
    assert gate.admit(frames(b"a", "bye", {"exit_code": 0}, rank=0)) is None  # not its rank
    bye = gate.admit(frames(b"a", "bye", {"exit_code": 0}, rank=2))
    assert bye is not None and bye.body == {"exit_code": 0}
    assert gate.tally.counts == {WORKERS: 4}
    assert gate.tally.first[WORKERS] == "a log message before hello"


def test_a_bound_ranks_bad_message_becomes_an_error_for_that_rank() -> None:
    gate = Admission(TOKEN, 1 << 20)
    gate.admit(frames(b"a", "hello", HELLO, rank=1))
    message = gate.admit([b"a", TOKEN.encode(), b'{"v": 2, "kind": "log", "rank": 1e400}'])
    assert message is not None
    assert (message.kind, message.rank) == ("error", 1)
    assert message.body == {"type": "ProtocolError", "message": "header holds the number 1e400 is not finite"}
    too_many = gate.admit([b"a", TOKEN.encode(), *[b"x"] * 1030])
    assert too_many is not None and too_many.body["message"] == "message of 1031 frames; at most 1026 are allowed"
    assert gate.tally.counts == {}


def test_a_malformed_hello_from_a_token_holder_is_dropped_not_bound() -> None:
    gate = Admission(TOKEN, 1 << 20)
    assert gate.admit([b"a", TOKEN.encode(), b"[" * 10_000]) is None
    assert gate.peers == {}
    assert gate.tally.first == {WORKERS: "ProtocolError: header nests lists or objects deeper than 64 levels"}


def test_the_note_sums_up_once() -> None:
    tally = Tally()
    assert tally.note() is None
    for _ in range(1234):
        tally.add(STRANGERS, "a wrong token")
    tally.add(HANDSHAKES, "a CURVE key that is not this run's")
    tally.add(WORKERS, "x" * 1000)
    assert tally.total == 1235
    assert tally.note() == (
        "IPC socket: dropped 1234 frame sets from peers without this run's token (first: a wrong token);"
        " refused 1 connections at the handshake (first: a CURVE key that is not this run's);"
        f" dropped 1 frame sets from holders of the token that are not a bound rank (first: {'x' * 200})"
    )
    assert tally.note() is None
    tally.add(STRANGERS, "more")
    assert tally.note() is None  # once per run: the executor logs one line


def test_the_ledger_counts_only_bound_connections() -> None:
    ledger = ConnectionLedger()
    ledger.on_accepted(10)  # a stranger
    ledger.on_disconnected(10)
    ledger.on_accepted(10)  # the worker, on the same descriptor
    ledger.bind(10)
    assert (ledger.connected, ledger.disconnected, ledger.all_disconnected()) == (1, 0, False)
    ledger.on_accepted(11)  # another stranger comes and goes
    ledger.on_disconnected(11)
    assert ledger.disconnected == 0
    ledger.on_disconnected(10)
    assert (ledger.connected, ledger.disconnected, ledger.all_disconnected()) == (1, 1, True)


def test_a_hello_read_after_its_connection_closed_still_counts_the_close() -> None:
    ledger = ConnectionLedger()
    ledger.on_accepted(7)
    ledger.on_disconnected(7)  # the monitor event was handled before the queued hello
    ledger.bind(7)
    assert (ledger.connected, ledger.disconnected) == (1, 1)


def test_without_descriptors_every_close_counts() -> None:
    ledger = ConnectionLedger()
    ledger.on_accepted(3)
    ledger.bind(None)
    ledger.on_disconnected(3)
    ledger.on_disconnected(4)
    assert ledger.untracked and (ledger.connected, ledger.disconnected) == (1, 2)
    assert ConnectionLedger().all_disconnected() is False
