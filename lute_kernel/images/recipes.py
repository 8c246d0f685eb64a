"""The recipe registry: every ``recipes/<name>.def.j2`` with the metadata block at its top.

Owns reading a recipe's metadata (description, parent image, sites allowed to build it), checking
the set (parents exist, no cycles), and ordering builds parents first. A recipe is data: adding an
image is adding a file, never editing a list here. Must not render templates or run builds.

The metadata block is a jinja comment, so it never reaches the rendered definition file::

    {#- lute-image
    description: LCLS-II psana on top of base.
    parent: base
    sites: [s3df]          # optional: only these sites build it (default: every site)
    site_note: "why"       # optional: shown when another site tries
    mpi: {flavour: mpich, pmi: [pmi2, pmi1]}   # optional: the MPI it carries (lute_kernel.images.mpi)
    mksquashfs_args: ["-Xcompression-level", "3"]   # optional: more mksquashfs options for this image
    -#}
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lute_kernel.errors import InputError
from lute_kernel.images.mpi import ImageMpi
from lute_kernel.images.paths import RECIPE_SUFFIX

_META_BLOCK = re.compile(r"\A\{#-?[ \t]*lute-image[ \t]*\n(?P<body>.*?)^[ \t]*-?#\}", re.DOTALL | re.MULTILINE)


class RecipeMeta(BaseModel):
    """What a recipe declares about itself (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(..., min_length=1, description="One line: what the image holds.")
    parent: Optional[str] = Field(None, description="The image this one starts from (Bootstrap: localimage).")
    sites: List[str] = Field(default_factory=list, description="Sites allowed to build it; empty: every site.")
    site_note: str = Field("", description="Why it is site-only (shown to the other sites).")
    mpi: Optional[ImageMpi] = Field(
        None, description="The MPI the image carries and the PMI interfaces it speaks (none: no MPI)."
    )
    mksquashfs_args: List[str] = Field(
        default_factory=list,
        description="More mksquashfs options for this image (e.g. a faster compression level for a large rootfs).",
    )


@dataclass(frozen=True)
class Recipe:
    """One image recipe: its name (the file name), template path and metadata."""

    name: str
    path: Path
    meta: RecipeMeta

    @property
    def parent(self) -> Optional[str]:
        """The parent image's name, if the recipe starts from another image."""
        return self.meta.parent

    def allowed_at(self, site: str) -> bool:
        """Return whether ``site`` may build this image."""
        return not self.meta.sites or site in self.meta.sites

    def restriction(self) -> str:
        """Return ``"s3df only"``-style text, or ``""`` for an image every site builds."""
        return f"{', '.join(self.meta.sites)} only" if self.meta.sites else ""


def recipe_names(recipes_dir: Path) -> List[str]:
    """Return the image names that have a recipe (cheap: reads no file)."""
    return sorted(p.name[: -len(RECIPE_SUFFIX)] for p in recipes_dir.glob(f"*{RECIPE_SUFFIX}") if p.is_file())


def read_meta(path: Path) -> RecipeMeta:
    """Parse the metadata block at the top of one recipe."""
    text = path.read_text()
    match = _META_BLOCK.match(text)
    if not match:
        raise InputError(f"{path}:1: a recipe starts with a metadata block: {{#- lute-image … -#}}")
    try:
        data = yaml.safe_load(match.group("body")) or {}
        if not isinstance(data, dict):
            raise InputError(f"{path}:2: the lute-image block must be a YAML mapping")
        return RecipeMeta.model_validate(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = 2 + mark.line if mark is not None else 2
        raise InputError(f"{path}:{line}: the lute-image block is not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputError(f"{path}:2: invalid lute-image block: {problems}") from None


@dataclass(frozen=True)
class RecipeBook:
    """Every recipe of one folder, checked: parents exist and form no cycle."""

    recipes_dir: Path
    recipes: Dict[str, Recipe]

    def get(self, name: str) -> Recipe:
        """Return the recipe of ``name``; an unknown image is an error with close names suggested."""
        if name not in self.recipes:
            raise unknown_image_error(name, self.recipes, self.recipes_dir)
        return self.recipes[name]

    def ancestors(self, name: str) -> List[str]:
        """Return ``name``'s parent chain, nearest first."""
        chain: List[str] = []
        parent = self.get(name).parent
        while parent is not None:
            if parent == name or parent in chain:
                cycle = " -> ".join([name, *chain, parent])
                raise InputError(f"{self.recipes[name].path}: parent images form a cycle: {cycle}")
            chain.append(parent)
            parent = self.get(parent).parent
        return chain

    def build_order(self, names: Iterable[str]) -> List[Recipe]:
        """Return the recipes to build for ``names``, parents first, each once."""
        order: List[Recipe] = []
        for name in names:
            for step in [*reversed(self.ancestors(name)), name]:
                if self.recipes[step] not in order:
                    order.append(self.recipes[step])
        return order

    def buildable_at(self, site: str) -> List[str]:
        """Return the images ``site`` may build (itself and all its parents allowed)."""
        return [
            name
            for name in sorted(self.recipes)
            if all(self.recipes[n].allowed_at(site) for n in [name, *self.ancestors(name)])
        ]


def load_recipes(recipes_dir: Path) -> RecipeBook:
    """Read every recipe of ``recipes_dir`` and check the set."""
    if not recipes_dir.is_dir():
        raise InputError(f"recipes folder {recipes_dir} does not exist (LUTE_RECIPES_DIR or the repo's recipes/)")
    recipes = {}
    for name in recipe_names(recipes_dir):
        path = recipes_dir / f"{name}{RECIPE_SUFFIX}"
        recipes[name] = Recipe(name=name, path=path, meta=read_meta(path))
    book = RecipeBook(recipes_dir=recipes_dir, recipes=recipes)
    for recipe in recipes.values():
        if recipe.parent is not None and recipe.parent not in recipes:
            raise InputError(f"{recipe.path}: parent image {recipe.parent!r} has no recipe in {recipes_dir}")
    for name in recipes:
        book.ancestors(name)  # raises on a cycle
    return book


def unknown_image_error(name: str, known: Iterable[str], recipes_dir: Path) -> InputError:
    """Return the error for an image that has no recipe, with close names suggested."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return InputError(
        f"unknown image {name!r}: no recipe {recipes_dir / (name + RECIPE_SUFFIX)} "
        f"(known: {', '.join(names) or 'none'}){hint}; add the recipe, then run `just build-image {name}`"
    )


def check_site(order: Iterable[Recipe], site: str) -> None:
    """Fail fast, before anything is built, when ``site`` may not build one of the images."""
    refused = [r for r in order if not r.allowed_at(site)]
    if not refused:
        return
    lines = []
    for recipe in refused:
        note = f" ({recipe.meta.site_note})" if recipe.meta.site_note else ""
        lines.append(
            f"image {recipe.name!r} is built only at site {', '.join(recipe.meta.sites)}{note}; this is site {site!r}"
        )
    first = refused[0]
    raise InputError(
        "; ".join(lines) + f". Build it there: `lute-kernel images build {first.name} --site {first.meta.sites[0]}`"
    )
