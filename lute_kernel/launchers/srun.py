"""The srun launcher: MPI ranks as a Slurm job step, the runtime's argv inside each rank.

``srun --mpi=<plugin> -n N [--cpus-per-task C] [--cpu-bind=cores] --kill-on-bad-exit=1 <argv>``.
Hybrid model: srun (and its PMI) outside, ``apptainer exec`` inside. ``--kill-on-bad-exit`` makes
one failing rank end the whole step, so the executor sees the step exit instead of a hang.
"""

from __future__ import annotations

from typing import List, Sequence

from lute_kernel.launchers.base import Launcher, LauncherCapabilities
from lute_kernel.sites import MpiSettings
from lute_kernel.task import Resources


class SrunLauncher(Launcher):
    """Starts N ranks with srun inside the current allocation."""

    name = "srun"
    capabilities = LauncherCapabilities(multi_rank=True, multi_node=True)

    def __init__(self, settings: MpiSettings) -> None:
        self.settings = settings

    def wrap(self, argv: Sequence[str], resources: Resources) -> List[str]:
        """Return the srun argv around ``argv``."""
        prefix = ["srun", f"--mpi={self.settings.srun_mpi}", "-n", str(resources.ranks)]
        if resources.cpus_per_rank > 1:
            prefix.append(f"--cpus-per-task={resources.cpus_per_rank}")
        if self.settings.cpu_bind:
            prefix.append(f"--cpu-bind={self.settings.cpu_bind}")
        prefix.append("--kill-on-bad-exit=1")
        return [*prefix, *self.settings.srun_args, *argv]
