"""A test-only Task that keeps talking to the kernel while strangers attack the run's socket.

It tells the test where the socket is (through a FIFO the test reads), then sends a ``log`` tick
every few milliseconds until the test writes to a second FIFO, then a progress message with an
array and its result. The test checks that every tick arrived, whatever the strangers sent.
"""

from __future__ import annotations

import json
import os
import select

from lute_kernel.parameters import TaskParameters, param
from lute_kernel.task import Task

TICK_MS = 5
MAX_TICKS = 200_000


class IpcStrangerTarget(Task):
    """Reports its endpoint, ticks until released, then sends an array and finishes."""

    image = "smoke"

    class Parameters(TaskParameters):
        ready_fifo: str = param("", "FIFO the Task writes its endpoint and server key to.")
        go_fifo: str = param("", "FIFO whose first bytes release the Task.")

    def run(self) -> None:
        import numpy as np

        params = self.params
        assert isinstance(params, IpcStrangerTarget.Parameters)
        go = os.open(params.go_fifo, os.O_RDONLY | os.O_NONBLOCK)  # before `ready`: the test may then open it
        info = {
            "endpoint": os.environ.get("LUTE_IPC_ENDPOINT", ""),
            "server_key": os.environ.get("LUTE_IPC_SERVER_KEY", ""),
            "pid": os.getpid(),
        }
        with open(params.ready_fifo, "w") as ready:
            ready.write(json.dumps(info))
        poller = select.poll()
        poller.register(go, select.POLLIN)
        ticks, kernel = 0, os.getppid()
        while ticks < MAX_TICKS and not poller.poll(TICK_MS) and os.getppid() == kernel:  # gone with the kernel
            ticks += 1
            self.log.info("tick %d", ticks)
        os.close(go)
        self.progress(1, 1, "array", data=np.arange(1000, dtype=np.float64))
        self.result.summary = f"ticks: {ticks}"
