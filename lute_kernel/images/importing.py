"""``lute-kernel images import``: a tool's Dockerfile as a recipe under recipes/, to review, then build.

Owns laying the converted Dockerfile (``images.dockerfile``) out in our recipe format: the
``lute-image`` metadata block (``parent:`` the image it starts from, since the Dockerfile's FROM
image cannot be pulled at every site), the shared fragments (header, ``from_parent``, the first
and last lines of ``%post``, the worker check of ``%test``, the labels), the parent's
``%environment`` carried first (a child's section replaces its parent's), the review notes as a
comment, converted text inside ``{% raw %}`` (a Dockerfile's ``{{ }}`` is not jinja), and the
build-context files ``COPY`` names copied to ``recipes/<name>/``. The written recipe is rendered and
checked like every recipe before this returns. Refuses to overwrite a recipe unless told to.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

from lute_kernel.errors import InputError
from lute_kernel.images.dockerfile import DockerfileRefused, DockerRecipe, read_dockerfile
from lute_kernel.images.paths import RECIPE_SUFFIX
from lute_kernel.images.recipes import load_recipes
from lute_kernel.images.render import check_definition, render_context, render_recipe
from lute_kernel.sites import SiteProfile

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
MAX_COPIED_BYTES = 20 << 20
"""Build-context files copied into recipes/<name>/ at most (a whole source tree is the reviewer's call)."""
INDENT = "    "


@dataclass
class ImportedRecipe:
    """The recipe written, the context files copied next to it, and what the reviewer should know."""

    path: Path
    copied: List[Path] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def _raw(lines: List[str]) -> List[str]:
    if not lines:
        return []
    if any("endraw" in line for line in lines):
        raise InputError("the Dockerfile contains 'endraw', which cannot be kept verbatim in a recipe template")
    return ["{% raw %}", *[INDENT + line.strip() for line in lines], "{% endraw %}"]


def _section(name: str, lines: List[str], before: Tuple[str, ...] = (), after: Tuple[str, ...] = ()) -> List[str]:
    if not lines and not before:
        return []
    return ["", f"%{name}", *before, *_raw(lines), *after]


def _context_path(source: str, context: Path) -> str:
    relative = os.path.normpath(source.lstrip("/"))  # Docker reads every COPY source from the build context
    if relative == ".." or relative.startswith("../"):
        raise InputError(f"COPY/ADD source {source!r} is outside the build context {context}")
    return relative


def _files(
    recipe: DockerRecipe, name: str, context: Path, recipes_dir: Path
) -> Tuple[List[str], List[Tuple[Path, Path]], List[str]]:
    """Return the %files lines (sources under recipes/<name>/), the copies to make and the notes."""
    lines, copies, notes = [], [], []
    budget = MAX_COPIED_BYTES
    for source, dest in recipe.files:
        relative = _context_path(source, context)
        found = context / relative
        target = recipes_dir / name / relative
        lines.append(f"{name}/{relative} {dest}")
        size = _size(found)
        if size is None or any(c in relative for c in "*?["):
            notes.append(f"COPY {source}: not a file or folder of {context}: put it at {target}")
        elif size > budget:
            notes.append(f"COPY {source}: {size:,} bytes; copy {found} to {target} yourself")
        else:
            budget -= size
            copies.append((found, target))
    return lines, copies, notes


def _size(path: Path) -> Optional[int]:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return None


def _parent_environment(recipes_dir: Path, parent: str, site: SiteProfile) -> List[str]:
    recipe = load_recipes(recipes_dir).get(parent)
    placeholder = Path("/parent.sif") if recipe.parent is not None else None
    text = render_recipe(recipe, render_context(recipe, site, placeholder))
    return [f"export {line}" for line in check_definition(text, recipe).environment]


def recipe_text(
    recipe: DockerRecipe,
    *,
    name: str,
    parent: str,
    source: str,
    files: List[str],
    parent_env: List[str],
    notes: List[str],
) -> str:
    """Return the recipe template for a converted Dockerfile."""
    description = f"{name}: converted from {source} (FROM {recipe.base}) by lute-kernel images import; review it"
    review = [f"  - {note}" for note in notes] or ["  - nothing was dropped or changed"]
    head = [
        "{#- lute-image",
        f"description: {json.dumps(description)}",
        f"parent: {parent}",
        "-#}",
        "{#",
        f"  Converted by `lute-kernel images import` from {source}. Review it, then build it:",
        f"  `lute-kernel images build {name}`. What changed on the way:",
        f"  - FROM {recipe.base}: starts from our {parent!r} image instead (Bootstrap: localimage); the",
        "    Dockerfile's commands assume its FROM image: check its packages and paths are those of Debian.",
        *review,
        "#}",
        '{% include "fragments/header.j2" %}',
        '{% include "fragments/from_parent.j2" %}',
        f"# Dockerfile: FROM {recipe.base} (replaced by the parent image {parent})",
    ]
    env_before = (
        INDENT + f"# {parent}'s environment first: this section replaces it",
        *(INDENT + e for e in parent_env),
    )
    body = [
        *_section("files", files),
        *_section(
            "post",
            recipe.post,
            before=('{% include "fragments/post_prelude.j2" %}',),
            after=('{% include "fragments/post_cleanup.j2" %}',),
        ),
        *_section("environment", recipe.environment, before=env_before if recipe.environment else ()),
        *_section("runscript", [recipe.runscript] if recipe.runscript else []),
        "",
        "%test",
        INDENT + "set -eu",
        '{% include "fragments/worker_check.j2" %}',
        "",
        '{% include "fragments/labels.j2" %}',
        *_raw([f"{key} {value}".strip() for key, value in recipe.labels]),
    ]
    return "\n".join(head + body) + "\n"


def import_dockerfile(
    dockerfile: Path, name: str, *, parent: str, recipes_dir: Path, site: SiteProfile, force: bool = False
) -> ImportedRecipe:
    """Convert ``dockerfile`` into ``recipes_dir/<name>.def.j2`` (and its context files), then check it.

    Raises:
        InputError: A bad name, an existing recipe (without ``force``), an unknown parent, a Dockerfile
            that cannot be converted faithfully (naming what), or a converted recipe that fails the checks.
    """
    if not NAME.match(name):
        raise InputError(f"image name {name!r}: lowercase letters, digits, '-' and '_', starting with a letter")
    if name == parent:
        raise InputError(f"image {name!r} cannot be its own parent")
    path = recipes_dir / f"{name}{RECIPE_SUFFIX}"
    if path.exists() and not force:
        raise InputError(f"{path} exists; --force replaces it")
    try:
        text = dockerfile.read_text(encoding="utf-8")
        recipe = read_dockerfile(text)
    except OSError as exc:
        raise InputError(f"cannot read {dockerfile}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{dockerfile} is not UTF-8 text") from None
    except DockerfileRefused as exc:
        raise InputError(f"{dockerfile}: cannot convert: {exc}") from None
    parent_env = _parent_environment(recipes_dir, parent, site)
    files, copies, notes = _files(recipe, name, dockerfile.parent, recipes_dir)
    notes = [*recipe.notes, *notes]
    path.write_text(
        recipe_text(
            recipe, name=name, parent=parent, source=dockerfile.name, files=files, parent_env=parent_env, notes=notes
        )
    )
    for found, target in copies:
        target.parent.mkdir(parents=True, exist_ok=True)
        if found.is_dir():
            shutil.copytree(found, target, dirs_exist_ok=True)
        else:
            shutil.copy2(found, target)
    imported = load_recipes(recipes_dir).get(name)
    check_definition(render_recipe(imported, render_context(imported, site, Path("/parent.sif"))), imported)
    return ImportedRecipe(path=path, copied=[target for _found, target in copies], notes=notes)
