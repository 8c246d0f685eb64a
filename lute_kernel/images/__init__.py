"""Apptainer images of the Tasks' software environments: recipes, builds, and finding a built SIF.

The runtime needs only ``find_image`` and ``known_images`` (light: no jinja2, no hashing). Builds
live in ``lute_kernel.images.build`` (``build_images``), the status table in
``lute_kernel.images.status``; the one seam that spawns ``apptainer build`` is
``lute_kernel.images.apptainer_build.run_build_command``. The names below are imported when first
used (PEP 562): ``tasks`` needs only ``images.paths``, and importing a submodule runs this file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lute_kernel.images.lookup import BuiltImage, find_image, known_images

__all__ = ["BuiltImage", "find_image", "known_images"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lute_kernel.images import lookup

        return getattr(lookup, name)
    raise AttributeError(f"module 'lute_kernel.images' has no attribute {name!r}")
