"""The launcher seam: ``wrap(argv, resources) -> argv``. Pure; checks resources before launch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Sequence

from lute_kernel.errors import InputError
from lute_kernel.runtimes.base import Runtime
from lute_kernel.task import Resources

if TYPE_CHECKING:
    from lute_kernel.plan import ProcessSpec


@dataclass(frozen=True)
class LauncherCapabilities:
    """What a launcher can start."""

    multi_rank: bool = False
    multi_node: bool = False


class Launcher(ABC):
    """Starts the runtime's argv with the requested resources."""

    name: str = ""
    capabilities = LauncherCapabilities()

    @abstractmethod
    def wrap(self, argv: Sequence[str], resources: Resources) -> List[str]:
        """Return the argv that launches ``argv`` with ``resources``."""

    def check(self, resources: Resources, runtime: Runtime) -> None:
        """Refuse, before anything starts, a launch this launcher or runtime cannot do."""
        if resources.ranks > 1 and not self.capabilities.multi_rank:
            raise InputError(f"launcher {self.name!r} starts one process; the Task asks for {resources.ranks} ranks")
        if resources.ranks > 1 and not runtime.capabilities.supports_mpi:
            raise InputError(f"runtime {runtime.name!r} cannot run MPI Tasks")

    def for_process(self, spec: ProcessSpec, runtime: Runtime) -> Launcher:
        """Check the launch of ``spec`` in ``runtime`` and return the launcher set up for it.

        ``build_plan`` calls this before wrapping anything. By default: ``check``, then itself; the MPI
        launchers also match the process's MPI (its image's) with what they serve.
        """
        self.check(spec.resources, runtime)
        return self
