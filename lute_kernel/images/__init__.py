"""Apptainer images of the Tasks' software environments: recipes, builds, and finding a built SIF.

The runtime needs only ``find_image`` and ``known_images`` (light: no jinja2, no hashing). Builds
live in ``lute_kernel.images.build`` (``build_images``), the status table in
``lute_kernel.images.status``; the one seam that spawns ``apptainer build`` is
``lute_kernel.images.apptainer_build.run_build_command``.
"""

from __future__ import annotations

from lute_kernel.images.lookup import BuiltImage, find_image, known_images

__all__ = ["BuiltImage", "find_image", "known_images"]
