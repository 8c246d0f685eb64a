"""The direct launcher: one process, started as it is."""

from __future__ import annotations

from typing import List, Sequence

from lute_kernel.launchers.base import Launcher, LauncherCapabilities
from lute_kernel.task import Resources


class DirectLauncher(Launcher):
    """Starts exactly one process; adds nothing to argv."""

    name = "direct"
    capabilities = LauncherCapabilities(multi_rank=False, multi_node=False)

    def wrap(self, argv: Sequence[str], resources: Resources) -> List[str]:
        """Return ``argv`` unchanged."""
        return list(argv)
