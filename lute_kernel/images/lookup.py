"""Finding a built image for a run: ``find_image`` and ``known_images``.

Owns the answer the Apptainer runtime needs before it launches: which SIF, with which sha256 (for
the run's provenance), or an ``InputError`` that says which ``just build-image NAME`` to run. Fast
on purpose (reads the manifest and stats one file; no rendering, no hashing), so it can run before
every Task. It does not tell whether the recipe changed since the build: ``lute-kernel images ls``
shows that.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from lute_kernel.errors import InputError
from lute_kernel.images.manifest import read_manifest
from lute_kernel.images.mpi import ImageMpi
from lute_kernel.images.paths import MANIFEST_NAME, RECIPE_SUFFIX, default_images_dir, default_recipes_dir
from lute_kernel.images.sandbox import ready_sandbox
from lute_kernel.sites import SiteProfile


@dataclass(frozen=True)
class BuiltImage:
    """A built image: its SIF (in the cache), the SIF's sha256 and the recipe's content address."""

    name: str
    sif: Path
    sha256: str
    address: str
    sandbox: Optional[Path] = None
    """The unpacked copy the Task runs from, on sites with ``images.run_from: sandbox``."""
    mpi: Optional[ImageMpi] = None
    """The MPI the image carries, as recorded when it was built (None: no MPI)."""

    @property
    def runnable(self) -> Path:
        """What ``apptainer exec`` is given: the sandbox when there is one, else the SIF."""
        return self.sandbox or self.sif


def known_images(recipes_dir: Optional[Path] = None, site: Optional[SiteProfile] = None) -> List[str]:
    """Return the names of the images that have a recipe."""
    from lute_kernel.images.recipes import recipe_names

    return recipe_names(recipes_dir or default_recipes_dir(site))


def find_image(
    name: str,
    site: SiteProfile,
    *,
    images_dir: Optional[Path] = None,
    recipes_dir: Optional[Path] = None,
) -> BuiltImage:
    """Return the built image ``name``.

    Raises:
        InputError: No recipe of that name, not built, or its SIF is missing or changed since the
            build; the message says which ``just build-image NAME`` to run.
    """
    recipes = recipes_dir or default_recipes_dir(site)
    recipe = recipes / f"{name}{RECIPE_SUFFIX}"
    if not recipe.is_file():
        from lute_kernel.images.recipes import recipe_names, unknown_image_error  # errors only: PyYAML, models

        raise unknown_image_error(name, recipe_names(recipes), recipes)
    manifest = (images_dir or default_images_dir(site, recipes)) / MANIFEST_NAME
    record = read_manifest(manifest).get(name)
    if record is None:
        from lute_kernel.images.recipes import read_meta

        sites = read_meta(recipe).sites
        where = f" (it is built only at site {', '.join(sites)})" if sites and site.name not in sites else ""
        raise InputError(f"image {name!r} is not built{where}: run `just build-image {name}` (manifest {manifest})")
    sif = Path(record.sif)
    if not sif.is_file():
        raise InputError(f"image {name!r}: its SIF {sif} is missing: run `just build-image {name}`")
    if not record.sif_unchanged():
        raise InputError(
            f"image {name!r}: its SIF {sif} changed since it was built (size or mtime differ from {manifest}): "
            f"run `just build-image {name}`"
        )
    sandbox = None
    if site.images.run_from == "sandbox":
        sandbox = ready_sandbox(sif, record.sha256)
        if sandbox is None:
            raise InputError(
                f"image {name!r}: this site runs Tasks from unpacked images and {sif}'s is missing:"
                f" run `just build-image {name}`"
            )
    return BuiltImage(name=name, sif=sif, sha256=record.sha256, address=record.address, sandbox=sandbox, mpi=record.mpi)
