"""Where image builds read and write: the recipes, the repo's ``images/`` folder, the SIF cache.

Owns the names of every file the image builder touches, so the builder, ``images ls`` and
``find_image`` agree on them. Must not create, read or hash anything itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from lute_kernel.sites import SiteProfile

REPO = Path(__file__).resolve().parents[2]
RECIPE_SUFFIX = ".def.j2"
MANIFEST_NAME = "images.lock.json"


def default_recipes_dir() -> Path:
    """Return the recipes folder: ``$LUTE_RECIPES_DIR`` or the repo's ``recipes/``."""
    override = os.environ.get("LUTE_RECIPES_DIR")
    return Path(override) if override else REPO / "recipes"


def default_images_dir(site: SiteProfile) -> Path:
    """Return the build-record folder: ``$LUTE_IMAGES_DIR``, the site's ``images.images_dir`` or ``images/``."""
    override = os.environ.get("LUTE_IMAGES_DIR") or site.images.images_dir
    return Path(os.path.expanduser(override)) if override else REPO / "images"


def default_cache_dir(site: SiteProfile) -> Path:
    """Return the SIF cache shared across clones: ``$LUTE_IMAGE_CACHE`` or the site's ``images.cache_dir``."""
    override = os.environ.get("LUTE_IMAGE_CACHE")
    return Path(os.path.expanduser(override or site.images.cache_dir))


@dataclass(frozen=True)
class ImagePaths:
    """The three folders of image builds, and the file names inside them."""

    recipes_dir: Path
    images_dir: Path
    cache_dir: Path

    @property
    def manifest(self) -> Path:
        """The record of what is built (``images/images.lock.json``)."""
        return self.images_dir / MANIFEST_NAME

    @property
    def manifest_lock(self) -> Path:
        """The lock file serialising manifest updates."""
        return self.images_dir / f".{MANIFEST_NAME}.lock"

    @property
    def logs_dir(self) -> Path:
        """Build logs and the rendered definition files of the last builds."""
        return self.images_dir / "logs"

    def recipe(self, name: str) -> Path:
        """Return the recipe template of image ``name``."""
        return self.recipes_dir / f"{name}{RECIPE_SUFFIX}"

    def link(self, name: str) -> Path:
        """Return ``images/<name>.sif``: a symlink to the cached SIF."""
        return self.images_dir / f"{name}.sif"

    def cached_sif(self, name: str, address: str) -> Path:
        """Return the cached SIF of one content address: ``<cache>/<name>-<address16>.sif``."""
        return self.cache_dir / f"{name}-{address[:16]}.sif"

    def lock_file(self, name: str) -> Path:
        """Return the per-image build lock; it lives in the cache, which every clone shares."""
        return self.cache_dir / ".locks" / f"{name}.lock"


def image_paths(
    site: SiteProfile,
    *,
    recipes_dir: Optional[Path] = None,
    images_dir: Optional[Path] = None,
    cache_dir: Optional[Path] = None,
) -> ImagePaths:
    """Return the folders for ``site``; each argument overrides its environment/site default."""
    return ImagePaths(
        recipes_dir=Path(os.path.abspath(recipes_dir or default_recipes_dir())),
        images_dir=Path(os.path.abspath(images_dir or default_images_dir(site))),
        cache_dir=Path(os.path.abspath(cache_dir or default_cache_dir(site))),
    )
