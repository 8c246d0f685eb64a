"""Who may speak for the Task: the token check, the binding of a connection to its rank, the drop tally.

Owns deciding, for one frame set read from the ROUTER, whether it is a message of this run's
worker. Order matters: the token frame is compared (``hmac.compare_digest``) before a byte of the
rest is parsed, so a peer without the token costs one comparison and a counter. A peer with the
token becomes a rank by saying ``hello``; the identity and the rank are then bound to each other
for the run (no second rank per identity, no second identity per rank). Keeps per-peer state only
for bound identities; everything dropped is tallied by category with its first reason, for one
note per run. No sockets here (``server`` reads and replies); never raises on a peer's input.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence

from lute_kernel.errors import ProtocolError
from lute_kernel.ipc.protocol import MAX_BUFFERS, Message, decode

MAX_FRAMES = 2 + MAX_BUFFERS
"""Token, header and at most MAX_BUFFERS buffer frames."""

REASON_CHARS = 200
STRANGERS, WORKERS, HANDSHAKES, INTERNAL = "strangers", "workers", "handshakes", "internal"
_NOTE = {
    INTERNAL: "dropped {} frame sets that the checks failed on (a kernel bug: please report it)",
    STRANGERS: "dropped {} frame sets from peers without this run's token",
    WORKERS: "dropped {} frame sets from holders of the token that are not a bound rank",
    HANDSHAKES: "refused {} connections at the handshake",
}


@dataclass
class Tally:
    """Counts of dropped frame sets by category, with the first reason seen in each (bounded state)."""

    counts: Dict[str, int] = field(default_factory=dict)
    first: Dict[str, str] = field(default_factory=dict)
    reported: bool = False

    def add(self, category: str, reason: str) -> None:
        """Count one drop."""
        self.counts[category] = self.counts.get(category, 0) + 1
        self.first.setdefault(category, reason[:REASON_CHARS])

    @property
    def total(self) -> int:
        """Every frame set dropped so far (handshake refusals are connections, not counted here)."""
        return sum(n for category, n in self.counts.items() if category != HANDSHAKES)

    def note(self) -> Optional[str]:
        """Return one line summarising every drop so far, the first time there is one; then None."""
        if self.reported or not self.counts:
            return None
        self.reported = True
        parts = [f"{_NOTE[c].format(n)} (first: {self.first[c]})" for c, n in self.counts.items()]
        return "IPC socket: " + "; ".join(parts)


def _token_reason(frames: Sequence[Any], token: bytes) -> Optional[str]:
    """Return why the frame set does not start with the token (None: it does). Compares in constant time."""
    if len(frames) < 2:
        return "no frame after the identity"
    candidate = frames[1].buffer if hasattr(frames[1], "buffer") else memoryview(frames[1])
    if candidate.nbytes != len(token):  # the length is no secret: the token's is fixed for every run
        return f"a {candidate.nbytes}-byte first frame where the token goes"
    if not hmac.compare_digest(candidate, token):
        return "a wrong token"
    return None


class Admission:
    """The gate of one run's ROUTER: token first, then a bound rank per identity."""

    def __init__(self, token: str, max_bytes: int) -> None:
        self.token = token.encode()
        self.max_bytes = max_bytes
        self.peers: Dict[bytes, int] = {}
        self.ranks: Dict[int, bytes] = {}
        self.tally = Tally()

    def admit(self, frames: Sequence[Any]) -> Optional[Message]:
        """Return the message this frame set (identity first) carries for the run, or None if dropped.

        A message our own bound worker sent but that cannot be decoded becomes an ``error`` message
        for its rank, so the run fails saying why. Never raises on a peer's input.
        """
        reason = _token_reason(frames, self.token)
        if reason is not None:
            self.tally.add(STRANGERS, reason)
            return None
        identity = bytes(frames[0].buffer if hasattr(frames[0], "buffer") else frames[0])
        bound = self.peers.get(identity)
        try:
            if len(frames) - 1 > MAX_FRAMES:
                raise ProtocolError(f"message of {len(frames) - 1} frames; at most {MAX_FRAMES} are allowed")
            message = decode(frames[2:], max_bytes=self.max_bytes)
        except ProtocolError as exc:
            if bound is None:
                self.tally.add(WORKERS, f"{type(exc).__name__}: {exc}")
                return None
            body = {"type": type(exc).__name__, "message": str(exc)}
            return Message(kind="error", body=body, rank=bound)
        return self._bind(identity, bound, message)

    def _bind(self, identity: bytes, bound: Optional[int], message: Message) -> Optional[Message]:
        if bound is not None:
            if message.kind == "hello":
                self.tally.add(WORKERS, f"a second hello from rank {bound}")
                return None
            if message.rank != bound:
                self.tally.add(WORKERS, f"rank {bound}'s connection sent a message as rank {message.rank}")
                return None
            return message
        if message.kind != "hello":  # a batch too: its messages belong to a rank that said hello
            self.tally.add(WORKERS, f"a {message.kind} message before hello")
            return None
        if message.rank in self.ranks:
            self.tally.add(WORKERS, f"a hello for rank {message.rank}, which another connection holds")
            return None
        self.peers[identity] = message.rank
        self.ranks[message.rank] = identity
        return message
