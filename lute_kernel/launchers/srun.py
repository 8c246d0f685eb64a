"""The srun launcher: MPI ranks as a Slurm job step, the runtime's argv inside each rank.

``srun --mpi=<plugin> -n N [--cpus-per-task C] [--cpu-bind=cores] --kill-on-bad-exit=1 <argv>``.
Hybrid model: srun (and its PMI) outside, ``apptainer exec`` inside. ``--kill-on-bad-exit`` makes
one failing rank end the whole step, so the executor sees the step exit instead of a hang.

The plugin matches the ranks' MPI: for containerised ranks the first PMI interface their image
speaks that the site's Slurm offers (``mpi.srun_mpi_offered``); for the local runtime's ranks,
which use the host's MPI, the site's ``mpi.srun_mpi``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence

from lute_kernel.launchers.base import Launcher, LauncherCapabilities
from lute_kernel.launchers.pmi import image_pmi
from lute_kernel.runtimes.base import Runtime
from lute_kernel.sites import MpiSettings
from lute_kernel.task import Resources

if TYPE_CHECKING:
    from lute_kernel.plan import ProcessSpec


class SrunLauncher(Launcher):
    """Starts N ranks with srun inside the current allocation."""

    name = "srun"
    capabilities = LauncherCapabilities(multi_rank=True, multi_node=True)

    def __init__(self, settings: MpiSettings, mpi_plugin: Optional[str] = None) -> None:
        self.settings = settings
        self.mpi_plugin = mpi_plugin or settings.srun_mpi

    def for_process(self, spec: ProcessSpec, runtime: Runtime) -> SrunLauncher:
        """Return this launcher with the ``--mpi`` plugin the process's MPI speaks (InputError: none)."""
        self.check(spec.resources, runtime)
        offered = self.settings.offered_srun_mpi()
        served_by = f"this site's Slurm (mpi.srun_mpi_offered: srun --mpi={', '.join(offered) or 'none'})"
        plugin = image_pmi(spec, runtime, offered, served_by=served_by)
        return SrunLauncher(self.settings, plugin or self.settings.srun_mpi)

    def wrap(self, argv: Sequence[str], resources: Resources) -> List[str]:
        """Return the srun argv around ``argv``."""
        prefix = ["srun", f"--mpi={self.mpi_plugin}", "-n", str(resources.ranks)]
        if resources.cpus_per_rank > 1:
            prefix.append(f"--cpus-per-task={resources.cpus_per_rank}")
        if self.settings.cpu_bind:
            prefix.append(f"--cpu-bind={self.settings.cpu_bind}")
        prefix.append("--kill-on-bad-exit=1")
        return [*prefix, *self.settings.srun_args, *argv]
