"""lute-kernel: run LCLS analysis Tasks, one software environment per image, one container per Task.

The public Python API is :func:`lute_kernel.api.run_task` (re-exported lazily here so that the
worker, which imports this package inside many images, does not pull in host-only dependencies).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: `lute-kernel run` imports this package first, and typing costs ~4 ms
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "run_task"]


def __getattr__(name: str) -> Any:
    if name == "run_task":
        from lute_kernel.api import run_task

        return run_task
    raise AttributeError(name)
