"""The mpirun launcher: MPI ranks off Slurm (laptops, workstations, tests), ``mpirun -n N <argv>``."""

from __future__ import annotations

from typing import List, Sequence

from lute_kernel.launchers.base import Launcher, LauncherCapabilities
from lute_kernel.sites import MpiSettings
from lute_kernel.task import Resources


class MpirunLauncher(Launcher):
    """Starts N ranks on this node with mpirun/mpiexec (MPICH's Hydra or Open MPI's)."""

    name = "mpirun"
    capabilities = LauncherCapabilities(multi_rank=True, multi_node=False)

    def __init__(self, settings: MpiSettings) -> None:
        self.settings = settings

    def wrap(self, argv: Sequence[str], resources: Resources) -> List[str]:
        """Return the mpirun argv around ``argv``."""
        return [self.settings.mpirun, "-n", str(resources.ranks), *self.settings.mpirun_args, *argv]
