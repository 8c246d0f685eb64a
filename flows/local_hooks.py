"""What the ``lute-kernel flow run`` command hands the flow it runs in its own process.

Owns one slot, set just before the CLI calls the flow and taken by the flow at its start: the
plan the CLI already checked (so the flow does not check it twice), the node server the CLI forked
before importing Prefect, the live table's observer, and the ARP variables of the CLI's
environment. A flow started by a worker finds the slot empty and does all of this itself. Not
Prefect parameters: none of it is data a flow run's record should hold.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from flows.arp import ArpContext
    from flows.backends.node_server import NodeServer
    from flows.runtime import Observer, PreparedFlow

_lock = threading.Lock()
_slot: Optional[LocalHooks] = None


@dataclass
class LocalHooks:
    """The CLI's in-process companions of one flow run."""

    prepared: Optional[PreparedFlow] = None
    node_server: Optional[NodeServer] = None
    observer: Optional[Observer] = None
    arp: Optional[ArpContext] = None


def install(hooks: LocalHooks) -> None:
    """Hand ``hooks`` to the next flow run of this process."""
    global _slot
    with _lock:
        _slot = hooks


def take() -> Optional[LocalHooks]:
    """Return (and clear) the hooks the CLI installed, or None."""
    global _slot
    with _lock:
        hooks, _slot = _slot, None
    return hooks
