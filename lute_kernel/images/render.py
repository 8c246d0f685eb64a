"""Rendering a recipe template into an Apptainer definition file, and checking the result.

Owns the jinja2 environment (StrictUndefined: an undefined name is an error), the render context
a recipe sees, turning template errors into ``InputError`` messages that name the file and line,
and checking the rendered definition (parsed by spython's recipe parser, ``images.definition``):
header, sections, labels and the ``%files`` sources. Must not hash, build or write files.
"""

from __future__ import annotations

import glob
import os
import re
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import jinja2

from lute_kernel.errors import InputError
from lute_kernel.images.definition import Definition, parse_definition
from lute_kernel.images.recipes import Recipe
from lute_kernel.sites import ImageSettings, SiteProfile

# Sections and bootstrap agents Apptainer 1.4 knows; anything else is a typo caught before a build.
# fmt: off
SECTIONS = frozenset((
    "setup", "files", "post", "environment", "runscript", "startscript", "test", "labels", "help", "arguments",
    "appinstall", "apphelp", "apprun", "applabels", "appenv", "appfiles", "appstart", "apptest",
))
AGENTS = frozenset((
    "docker", "docker-archive", "docker-daemon", "oci", "oci-archive", "library", "oras", "shub",
    "localimage", "debootstrap", "yum", "zypper", "busybox", "arch", "scratch",
))
# fmt: on
_HEADER_LINE = re.compile(r"^[A-Za-z][A-Za-z0-9]*:")


def host_ca_files(settings: ImageSettings) -> List[str]:
    """Return the host CA certificates a build trusts (none unless ``trust_host_ca``)."""
    if not settings.trust_host_ca:
        return []
    found = {path for pattern in settings.host_ca_files for path in glob.glob(os.path.expanduser(pattern))}
    return sorted(p for p in found if os.path.isfile(p))


def render_context(recipe: Recipe, site: SiteProfile, parent_sif: Optional[Path]) -> Dict[str, Any]:
    """Return what a recipe template can use.

    ``image``, ``description``, ``mpi`` (the metadata's ``mpi:``, or None), ``site`` (the site's
    name), ``images`` (the site's ``images:`` settings), ``host_ca_files`` and, for an image with a
    parent, ``parent`` and ``parent_sif``.
    """
    context: Dict[str, Any] = {
        "image": recipe.name,
        "description": recipe.meta.description,
        "mpi": recipe.meta.mpi,
        "site": site.name,
        "images": site.images,
        "host_ca_files": host_ca_files(site.images),
    }
    if recipe.parent is not None and parent_sif is not None:
        context["parent"] = recipe.parent
        context["parent_sif"] = str(parent_sif)
    return context


def render_recipe(recipe: Recipe, context: Dict[str, Any]) -> str:
    """Render ``recipe`` with ``context``; template errors become ``InputError`` naming file and line."""
    folder = recipe.path.parent
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    try:
        return env.get_template(recipe.path.name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = f"{exc.filename or recipe.path}:{exc.lineno}"
        raise InputError(f"{where}: template syntax error in recipe {recipe.name!r}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        path, line = _template_location(exc, recipe)
        raise InputError(f"{path}:{line}: recipe {recipe.name!r} includes {exc.name!r}, which does not exist") from None
    except jinja2.UndefinedError as exc:
        path, line = _template_location(exc, recipe)
        raise InputError(f"{path}:{line}: recipe {recipe.name!r}: {exc.message}") from None


def _template_location(exc: BaseException, recipe: Recipe) -> Tuple[str, int]:
    """Return the innermost template file and line of a render-time error (jinja maps frames to them)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    if not frames:
        return str(recipe.path), 1
    return frames[-1].filename, frames[-1].lineno or 1


def check_definition(text: str, recipe: Recipe) -> Definition:
    """Check the rendered definition and return it parsed (spython's recipe parser).

    The header (before the first section) must be ``Key: value`` lines starting with a known
    ``Bootstrap:`` agent; every section must be one Apptainer knows; an ``org.lute-kernel.image``
    label must name this recipe's image (a recipe copied from another and not renamed).
    """
    first = True
    for number, raw in enumerate(text.splitlines(), start=1):  # the header: spython skips what it does not know
        line = raw.strip()
        if raw.startswith("%"):
            break
        if not line or line.startswith("#"):
            continue
        if not _HEADER_LINE.match(line):
            raise _definition_error(recipe, number, f"expected a 'Key: value' header line, got {line!r}")
        key = line.partition(":")[0]
        if first and key.lower() != "bootstrap":
            raise _definition_error(recipe, number, f"the header must start with 'Bootstrap:', not {key!r}")
        first = False
    try:
        definition = parse_definition(text)
    except ValueError as exc:
        raise _definition_error(recipe, 1, str(exc)) from None
    if definition.agent is None:
        raise _definition_error(recipe, 1, "no 'Bootstrap:' header")
    if definition.agent not in AGENTS:
        raise _definition_error(recipe, _line_of(text, "bootstrap"), f"unknown bootstrap agent {definition.agent!r}")
    for section, number in definition.sections:
        if section not in SECTIONS:
            raise _definition_error(recipe, number, f"unknown section %{section}")
    named = definition.labels.get("org.lute-kernel.image")
    if named is not None and named != recipe.name:
        at = _line_of(text, "org.lute-kernel.image")
        raise _definition_error(recipe, at, f"label org.lute-kernel.image is {named!r}, not {recipe.name!r}")
    return definition


def _line_of(text: str, start: str) -> int:
    """Return the first line whose text starts with ``start`` (case-insensitive), else 1."""
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.strip().lower().startswith(start.lower()):
            return number
    return 1


def _definition_error(recipe: Recipe, line: int, problem: str) -> InputError:
    return InputError(f"{recipe.path}: rendered definition, line {line}: {problem} (recipe {recipe.name!r})")


def files_sources(text: str) -> List[str]:
    """Return the host paths copied by the ``%files`` sections (not ``%files from <stage>``)."""
    return parse_definition(text).sources
