"""What is built and what is stale, per recipe (``lute-kernel images ls``).

Owns comparing each recipe's current content address with the manifest and the SIF on disk.
Renders recipes (to compute addresses) but never builds, links or writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from lute_kernel.errors import InputError
from lute_kernel.images.build import prepare_images
from lute_kernel.images.manifest import ImageRecord, ManifestError, read_manifest
from lute_kernel.images.paths import ImagePaths, image_paths
from lute_kernel.images.recipes import load_recipes
from lute_kernel.sites import SiteProfile


@dataclass(frozen=True)
class ImageStatus:
    """One row of ``images ls``."""

    name: str
    description: str
    parent: Optional[str]
    restriction: str
    buildable: bool
    address: Optional[str]
    record: Optional[ImageRecord]
    problem: str

    @property
    def built(self) -> bool:
        """A record exists and its SIF has the recorded size and mtime."""
        return self.record is not None and self.record.sif_unchanged()

    @property
    def stale(self) -> Optional[bool]:
        """Built from another recipe than the current one (None when unknown)."""
        if not self.built or self.address is None or self.record is None:
            return None
        return self.record.address != self.address


def image_statuses(site: SiteProfile, paths: Optional[ImagePaths] = None) -> List[ImageStatus]:
    """Return the status of every recipe, as this site would build it."""
    paths = paths or image_paths(site)
    book = load_recipes(paths.recipes_dir)
    try:
        records = read_manifest(paths.manifest)
        manifest_problem = ""
    except ManifestError as exc:
        records, manifest_problem = {}, str(exc)
    buildable = set(book.buildable_at(site.name))
    rows = []
    for name, recipe in sorted(book.recipes.items()):
        address, problem = None, manifest_problem
        if name in buildable:
            try:
                address = prepare_images(book.build_order([name]), site, paths)[name].address
            except InputError as exc:
                problem = str(exc)
        record = records.get(name)
        if record is not None and not record.sif_unchanged():
            problem = problem or f"SIF {record.sif} is missing or changed"
        rows.append(
            ImageStatus(
                name=name,
                description=recipe.meta.description,
                parent=recipe.parent,
                restriction=recipe.restriction(),
                buildable=name in buildable,
                address=address,
                record=record,
                problem=problem,
            )
        )
    return rows
