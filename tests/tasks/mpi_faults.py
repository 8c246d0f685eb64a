"""Test-only MPI Tasks: ranks that crash, hang in a collective, or report their rank and transport."""

from __future__ import annotations

import os
import signal

from lute_kernel.parameters import TaskParameters, param
from lute_kernel.task import Resources, Task


class MpiRankCrash(Task):
    """Rank ``crash_rank`` dies (SIGKILL) while the others wait in a barrier that would never end."""

    image = "psana2"
    mpi = True
    resources = Resources(ranks=2)

    class Parameters(TaskParameters):
        crash_rank: int = param(1, "The rank that dies.")
        raise_instead: bool = param(False, "Raise an exception instead of dying by SIGKILL.")

    def run(self) -> None:
        from mpi4py import MPI

        params = self.params
        assert isinstance(params, MpiRankCrash.Parameters)
        comm = MPI.COMM_WORLD
        self.log.info("rank %d ready", comm.rank)
        comm.Barrier()
        if comm.rank == params.crash_rank:
            if params.raise_instead:
                raise RuntimeError(f"rank {comm.rank} failed on purpose")
            os.kill(os.getpid(), signal.SIGKILL)
        comm.Barrier()  # the surviving ranks wait here for the dead one
        self.result.summary = "unreachable"


class MpiReport(Task):
    """Each rank logs its rank and the IPC endpoint it used; rank 0 returns the world size."""

    image = "psana2"
    mpi = True
    resources = Resources(ranks=2)

    class Parameters(TaskParameters):
        sleep_secs: float = param(0.0, "Seconds every rank sleeps (for timeouts and cancellation).")

    def run(self) -> None:
        import time

        from mpi4py import MPI

        params = self.params
        assert isinstance(params, MpiReport.Parameters)
        comm = MPI.COMM_WORLD
        self.log.info("rank %d of %d via %s", comm.rank, comm.size, os.environ.get("LUTE_IPC_ENDPOINT", "?"))
        if params.sleep_secs:
            self.progress(0, 1, f"rank {comm.rank} sleeping")
            time.sleep(params.sleep_secs)
        sizes = comm.gather(comm.size, root=0)
        self.result.summary = {"size": comm.size, "gathered": len(sizes) if sizes else 0}
