"""The executor's signal wakeup pipe: readable as soon as a handled signal arrives, even before a poll starts."""

from __future__ import annotations

import os
import select
import signal
import threading
from typing import List

from lute_kernel.signal_wakeup import SignalWakeup


def test_a_signal_that_arrives_before_the_poll_still_wakes_it() -> None:
    seen: List[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, _frame: seen.append(signum))
    wakeup = SignalWakeup.install()
    assert wakeup is not None
    try:
        os.kill(os.getpid(), signal.SIGUSR1)  # delivered now: the poll below has not started yet
        ready, _, _ = select.select([wakeup.fd], [], [], 5)
        assert ready == [wakeup.fd]
        wakeup.drain()
        assert select.select([wakeup.fd], [], [], 0)[0] == []
        assert seen == [signal.SIGUSR1]
    finally:
        wakeup.uninstall()
        signal.signal(signal.SIGUSR1, previous)
    assert signal.set_wakeup_fd(-1) == -1  # the previous (none) was put back


def test_outside_the_main_thread_nothing_is_installed() -> None:
    got: List[object] = []
    worker = threading.Thread(target=lambda: got.append(SignalWakeup.install()))
    worker.start()
    worker.join()
    assert got == [None]
