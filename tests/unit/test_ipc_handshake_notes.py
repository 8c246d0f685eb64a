"""A handshake broken off is a stranger's, unless the kernel is stopping its workers: then it is theirs.

A peer that connects to a run's socket and leaves mid-handshake (having sent nothing, part of a
greeting, or a whole one) is counted in the run's warning; once the kernel signals its workers to
stop (a refused admission, a timeout, a cancel), a worker killed while it connects leaves the same
trace, and the run must not then warn of a stranger.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest

from lute_kernel.ipc.admission import HANDSHAKES
from lute_kernel.ipc.server import SOCKET_NAME, IpcServer

GREETING = b"\xff" + b"\x00" * 8 + b"\x7f\x03\x00NULL" + b"\x00" * 16 + b"\x00" + b"\x00" * 31


@pytest.mark.parametrize("sent", [0, 11, len(GREETING)], ids=["nothing", "part-of-a-greeting", "a-greeting"])
@pytest.mark.parametrize("stopping", [False, True], ids=["running", "stopping"])
def test_a_peer_leaving_mid_handshake_counts_only_while_no_worker_is_being_stopped(sent: int, stopping: bool) -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="lk-hs-"))
    server = IpcServer(run_dir, "ab" * 16, max_bytes=1 << 16)
    try:
        if stopping:
            server.workers_stopping()
        peer = socket.socket(socket.AF_UNIX)
        peer.connect(str(run_dir / SOCKET_NAME))
        peer.sendall(GREETING[:sent])
        peer.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not server.ledger._closed_unbound:  # its close is the last event
            server.drain_monitor()
            time.sleep(0.005)
        assert server.ledger._closed_unbound, "the peer's close was never seen"
        counted = server.admission.tally.counts.get(HANDSHAKES, 0)
        assert counted == (0 if stopping else 1)
        assert (server.rejection_note() is None) == stopping
    finally:
        server.close(run_dir / SOCKET_NAME)
        shutil.rmtree(run_dir, ignore_errors=True)
