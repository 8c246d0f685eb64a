"""Which socket connections belong to the run's workers, from the ROUTER's monitor events.

Owns the counts the executor reads (``connected``: connections that said a valid hello,
``disconnected``: how many of those have closed). A stranger who connects and leaves must not
look like a rank that left without finishing (that tears an MPI run down), so a connection counts
only once it is bound: the hello's frames carry the file descriptor they were read from
(``zmq.SRCFD``), and monitor events carry the same descriptor. Events and messages travel on
different queues, so a hello may be read after its connection's DISCONNECTED event: descriptors
that closed before being bound are remembered until reused (bounded by the process's descriptor
limit, whoever connects). Pure bookkeeping: the server feeds it, nothing here touches a socket.
"""

from __future__ import annotations

from typing import Optional, Set


class ConnectionLedger:
    """Bound connections by descriptor, and the counts derived from them."""

    def __init__(self) -> None:
        self.accepted = 0
        self.connected = 0
        self.disconnected = 0
        self.untracked = False
        """True once a hello came without a descriptor (libzmq without SRCFD): every close then counts."""
        self._bound: Set[int] = set()
        self._closed_unbound: Set[int] = set()

    def on_accepted(self, fd: int) -> None:
        """A connection was accepted on ``fd`` (a reused descriptor is a new connection)."""
        self.accepted += 1
        self._closed_unbound.discard(fd)

    def on_disconnected(self, fd: int) -> None:
        """The connection on ``fd`` closed."""
        if fd in self._bound:
            self._bound.discard(fd)
            self.disconnected += 1
        elif self.untracked:
            self.disconnected += 1
        else:
            self._closed_unbound.add(fd)

    def bind(self, fd: Optional[int]) -> None:
        """A worker's valid hello arrived on ``fd`` (None or negative: the descriptor is unknown)."""
        self.connected += 1
        if fd is None or fd < 0:
            self.untracked = True
        elif fd in self._closed_unbound:  # it closed before its hello was read
            self._closed_unbound.discard(fd)
            self.disconnected += 1
        else:
            self._bound.add(fd)

    def all_disconnected(self) -> bool:
        """True once every bound connection has closed (and there was one)."""
        return self.connected > 0 and self.disconnected >= self.connected
