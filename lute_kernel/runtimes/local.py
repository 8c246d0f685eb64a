"""The local runtime: the Task runs in the kernel's own Python environment (development, tests, CI)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Dict, List, Mapping

from lute_kernel.runtimes.base import (
    HOST_ENV_ALLOWLIST,
    Runtime,
    RuntimeCapabilities,
    allowed_env,
    kernel_package_dir,
)

if TYPE_CHECKING:
    from lute_kernel.plan import ProcessSpec


class LocalRuntime(Runtime):
    """Runs the process on the host with this interpreter; the environment is still allowlisted."""

    name = "local"
    capabilities = RuntimeCapabilities(supports_mpi=True, isolates_env=True, isolates_filesystem=False)

    def wrap(self, spec: ProcessSpec) -> List[str]:
        """Return the spec's argv with the Python placeholder replaced by this interpreter."""
        from lute_kernel.plan import PYTHON

        return [sys.executable if arg == PYTHON else arg for arg in spec.argv]

    def environment(self, spec: ProcessSpec, host_env: Mapping[str, str]) -> Dict[str, str]:
        """Return the allowlisted environment, with this kernel first on PYTHONPATH.

        The worker must import the same kernel as the host, installed or not.
        """
        env = allowed_env(host_env, HOST_ENV_ALLOWLIST)
        env.update(super().environment(spec, host_env))
        kernel_root = str(kernel_package_dir().parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (kernel_root, env.get("PYTHONPATH", "")) if p)
        return env
