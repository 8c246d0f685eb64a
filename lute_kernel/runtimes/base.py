"""The runtime seam: a runtime turns a ``ProcessSpec`` into argv and an environment. Pure.

Owns the ``Runtime`` interface, its capabilities, and the environment allowlist every runtime
applies (the Task sees only named variables from the host, never the whole environment).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from lute_kernel.plan import ProcessSpec

TASK_ENV_ALLOWLIST: Tuple[str, ...] = (
    "LANG", "LC_*", "TZ", "TERM",
    "LUTE_*", "SLURM_*", "PMI_*", "PMIX_*", "OMPI_*", "UCX_*", "MPIR_*", "HYDRA_*",
)  # fmt: skip
"""Host variables every runtime passes to the Task (exact names, or prefixes with '*')."""

HOST_ENV_ALLOWLIST: Tuple[str, ...] = ("PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH")
"""Variables that describe the host itself: the local runtime passes them; a container must not get them."""


@dataclass(frozen=True)
class RuntimeCapabilities:
    """What a runtime can do; plans are checked against these before launching."""

    supports_mpi: bool = False
    isolates_env: bool = True
    isolates_filesystem: bool = False


def kernel_package_dir() -> Path:
    """Return the folder of the ``lute_kernel`` package this process imported (checkout or installed).

    It is where the running code *is*: the local runtime puts its parent first on the worker's
    PYTHONPATH and the Apptainer runtime binds it read-only into containers, so a worker always
    runs the host's own kernel. It is not a home for data: site profiles and recipes are found as
    package data or in a configured root (``lute_kernel.resources``).
    """
    import lute_kernel

    return Path(next(iter(lute_kernel.__path__))).resolve()


@functools.lru_cache(maxsize=64)
def _matcher(patterns: Tuple[str, ...]) -> Callable[[str], Optional[re.Match[str]]]:
    # One regex for all patterns, each as fnmatchcase reads it: a run filters the environment several
    # times, and fnmatch tried every pattern on every variable (milliseconds a run).
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns) or r"(?!)").match


def allowed_env(host_env: Mapping[str, str], patterns: Sequence[str]) -> Dict[str, str]:
    """Return the host variables whose names match one of ``patterns`` (``fnmatch.fnmatchcase`` patterns)."""
    match = _matcher(tuple(patterns))
    return {k: v for k, v in host_env.items() if match(k)}


class Runtime(ABC):
    """Where the Task's process lives (the kernel's own Python, or an Apptainer image)."""

    name: str = ""
    capabilities = RuntimeCapabilities()

    task_env_prefix: str = ""
    """Prefix under which the spawned process passes a variable on to the Task (see LaunchPlan)."""

    def __init__(self, env_allowlist: Sequence[str] = ()) -> None:
        self.env_allowlist: List[str] = [*TASK_ENV_ALLOWLIST, *env_allowlist]

    @abstractmethod
    def wrap(self, spec: ProcessSpec) -> List[str]:
        """Return the argv that runs ``spec`` in this runtime."""

    def task_environment(self, spec: ProcessSpec, host_env: Mapping[str, str]) -> Dict[str, str]:
        """Return the Task's environment: allowlisted host variables plus the spec's own.

        ``build_plan`` stores it as the spec's ``env`` before ``wrap`` and ``environment`` see it.
        """
        env = allowed_env(host_env, [*self.env_allowlist, *spec.passthrough_env])
        env.update(spec.env)
        return env

    def environment(self, spec: ProcessSpec, host_env: Mapping[str, str]) -> Dict[str, str]:
        """Return the environment of the spawned process (by default: the Task's)."""
        return self.task_environment(spec, host_env)

    def private_dirs(self, spec: ProcessSpec) -> List[str]:
        """Return folders (relative to the run directory) the executor must make before the launch."""
        return []

    def ipc_endpoint(self, run_dir: str) -> str:
        """Return the socket address as the Task sees it."""
        return f"ipc://{run_dir}/s"

    def image_name(self, spec: ProcessSpec) -> Optional[str]:
        """Return the image the process runs in, if any."""
        return None

    def image_digest(self, spec: ProcessSpec) -> Optional[str]:
        """Return the sha256 of that image, if any."""
        return None

    def mpi_interfaces(self, spec: ProcessSpec) -> Optional[Tuple[str, ...]]:
        """Return the PMI interfaces the process's MPI speaks, in its order of preference.

        None: the process uses the host's MPI, whose interface the site names (``mpi.srun_mpi``).
        An empty tuple: it carries no MPI at all.
        """
        return None
