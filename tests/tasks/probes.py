"""Test-only Tasks that report what the Task's process sees: environment, home, mounts, identity."""

from __future__ import annotations

import os
import sys

from lute_kernel.parameters import TaskParameters, param
from lute_kernel.task import Task


class ProbeEnvironment(Task):
    """Reports its environment, $HOME, whether a host file is visible, and whether the kernel is writable."""

    image = "smoke"

    class Parameters(TaskParameters):
        host_file: str = param("", "A host path whose visibility is reported.")

    def run(self) -> None:
        import lute_kernel

        params = self.params
        assert isinstance(params, ProbeEnvironment.Parameters)
        kernel_dir = os.path.dirname(lute_kernel.__file__)
        try:
            with open(os.path.join(kernel_dir, "probe-write-test"), "w"):
                pass
            kernel_writable = True
            os.unlink(os.path.join(kernel_dir, "probe-write-test"))
        except OSError:
            kernel_writable = False
        work_probe = os.path.join(params.lute_config.work_dir, "probe.txt")
        with open(work_probe, "w") as handle:
            handle.write("written inside\n")
        self.log.info("probe done")
        self.result.summary = "probed"
        self.result.payload = {
            "env": dict(os.environ),
            "home": os.environ.get("HOME", ""),
            "host_file_visible": bool(params.host_file) and os.path.exists(params.host_file),
            "kernel_writable": kernel_writable,
            "python": sys.executable,
            "cwd": os.getcwd(),
            "work_probe": work_probe,
            "in_container": os.path.exists("/.singularity.d"),
        }
