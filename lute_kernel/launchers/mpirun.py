"""The mpirun launcher: MPI ranks off Slurm (laptops, workstations, tests), ``mpirun -n N <argv>``.

Containerised ranks must speak a PMI interface the site's mpirun serves (``mpi.mpirun_pmi``:
MPICH's Hydra serves PMI-2 and PMI-1); the local runtime's ranks use the host's MPI, mpirun's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Sequence

from lute_kernel.launchers.base import Launcher, LauncherCapabilities
from lute_kernel.launchers.pmi import image_pmi
from lute_kernel.runtimes.base import Runtime
from lute_kernel.sites import MpiSettings
from lute_kernel.task import Resources

if TYPE_CHECKING:
    from lute_kernel.plan import ProcessSpec


class MpirunLauncher(Launcher):
    """Starts N ranks on this node with mpirun/mpiexec (MPICH's Hydra or Open MPI's)."""

    name = "mpirun"
    capabilities = LauncherCapabilities(multi_rank=True, multi_node=False)

    def __init__(self, settings: MpiSettings) -> None:
        self.settings = settings

    def for_process(self, spec: ProcessSpec, runtime: Runtime) -> MpirunLauncher:
        """Check the launch, and that the image's MPI speaks what mpirun serves (InputError: it does not)."""
        self.check(spec.resources, runtime)
        served = self.settings.mpirun_pmi
        image_pmi(spec, runtime, served, served_by=f"{self.settings.mpirun} (mpi.mpirun_pmi: {', '.join(served)})")
        return self

    def wrap(self, argv: Sequence[str], resources: Resources) -> List[str]:
        """Return the mpirun argv around ``argv``."""
        return [self.settings.mpirun, "-n", str(resources.ranks), *self.settings.mpirun_args, *argv]
