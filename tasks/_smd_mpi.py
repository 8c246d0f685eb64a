"""The analyzers' and geometry Tasks' view of MPI: one rank alone, or every rank of COMM_WORLD.

Owns the few collective operations those Tasks need (sum of arrays, concatenation of per-rank
arrays, gathering Python objects, broadcasting rank 0's answer), so that one process and N ranks
run the same code path. Runs in the psana2 image; mpi4py is imported only when there are ranks.
"""

from __future__ import annotations

from typing import Any, List

import numpy as np


class World:
    """COMM_WORLD when launched on several ranks, else a world of one that needs no MPI at all."""

    def __init__(self) -> None:
        from ._psana2_io import mpi_world

        self.comm = mpi_world()
        self.rank = self.comm.Get_rank() if self.comm is not None else 0
        self.size = self.comm.Get_size() if self.comm is not None else 1

    def sum(self, value: Any) -> Any:
        """Element-wise sum over ranks (every rank gets it)."""
        array = np.asarray(value, dtype=np.float64)
        if self.comm is None:
            return array
        from mpi4py import MPI

        total = np.zeros_like(array)
        self.comm.Allreduce(np.ascontiguousarray(array), total, op=MPI.SUM)
        return total

    def concat(self, value: Any) -> Any:
        """Every rank's 1-D array, concatenated in rank order (every rank gets it)."""
        array = np.asarray(value)
        if self.comm is None:
            return array
        return np.concatenate(self.comm.allgather(array))

    def gather(self, value: Any) -> List[Any]:
        """Every rank's object on rank 0 (other ranks get an empty list)."""
        if self.comm is None:
            return [value]
        found = self.comm.gather(value, root=0)
        return found if found is not None else []

    def bcast(self, value: Any) -> Any:
        """Rank 0's object on every rank."""
        return value if self.comm is None else self.comm.bcast(value, root=0)
