"""Where image builds read and write: the recipes, the build records (``images/``), the SIF cache.

Owns the names of every file the image builder touches, so the builder, ``images ls`` and
``find_image`` agree on them, and where each folder is by default: the recipes shipped with the
kernel (package data) unless the environment or the site names others; the build records in the
``images/`` folder of the source tree those recipes belong to (a checkout), else in a folder per
recipes folder under the user's state directory (an installed kernel). Must not create, read or
hash anything itself.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from lute_kernel.resources import packaged_dir
from lute_kernel.sites import SiteProfile

RECIPE_SUFFIX = ".def.j2"
MANIFEST_NAME = "images.lock.json"
SOURCE_TREE_MARKERS = ("pyproject.toml", "lute_kernel")
"""A recipes folder whose parent holds these is a source tree's (a checkout): its records go beside it."""


def default_recipes_dir(site: Optional[SiteProfile] = None) -> Path:
    """Return the recipes folder: ``$LUTE_RECIPES_DIR``, the site's ``images.recipes_dir``, or the packaged recipes."""
    override = os.environ.get("LUTE_RECIPES_DIR") or (site.images.recipes_dir if site is not None else None)
    return Path(os.path.expanduser(override)) if override else packaged_dir("recipes")


def default_images_dir(
    site: SiteProfile, recipes_dir: Optional[Path] = None, env: Optional[Mapping[str, str]] = None
) -> Path:
    """Return the build-record folder.

    ``$LUTE_IMAGES_DIR``, else the site's ``images.images_dir``, else ``images/`` next to the recipes
    when they are a source tree's (a checkout keeps its records, as before), else
    ``$XDG_STATE_HOME/lute-kernel/images/<recipes folder's name>-<hash of its path>`` (an installed
    kernel; one record set per recipes folder, so two installs never mix their records).
    """
    env = os.environ if env is None else env
    override = env.get("LUTE_IMAGES_DIR") or site.images.images_dir
    if override:
        return Path(os.path.expanduser(override))
    recipes = Path(os.path.abspath(recipes_dir or default_recipes_dir(site))).resolve()
    tree = recipes.parent
    if all((tree / marker).exists() for marker in SOURCE_TREE_MARKERS):
        return tree / "images"
    state = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    key = hashlib.sha256(str(recipes).encode()).hexdigest()[:12]
    return Path(state) / "lute-kernel" / "images" / f"{recipes.name}-{key}"


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
    recipes = Path(os.path.abspath(recipes_dir or default_recipes_dir(site)))
    return ImagePaths(
        recipes_dir=recipes,
        images_dir=Path(os.path.abspath(images_dir or default_images_dir(site, recipes))),
        cache_dir=Path(os.path.abspath(cache_dir or default_cache_dir(site))),
    )
