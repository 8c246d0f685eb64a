"""The listing ``lute-kernel tasks`` prints: the table of Tasks by image, the counts, failed modules.

Owns laying the catalogue out with rich (box table on a terminal, 200 columns elsewhere) and the
listing's one cache: which images have recipes and their notes (``crystfel (s3df only)``) need
the site profile and every recipe's metadata block, both validated with pydantic (~150 ms of
imports). They are kept in ``~/.cache/lute-kernel/tasks-listing.json`` keyed by the site profile
file and every recipe file (path, size, mtime) and ``LUTE_RECIPES_DIR``, so a listing with nothing
changed reads neither. Imports neither typer nor click: the lean entry (``cli.lean``) and the typer
command both call :func:`print_task_list`. Raises the kernel's errors (a bad site profile); the
caller reports them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

CACHE_VERSION = 1


def _cache_path() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "lute-kernel" / "tasks-listing.json"


def _stamp(path: Path) -> Optional[List[Any]]:
    try:
        stat = path.stat()
    except OSError:
        return None
    return [str(path), stat.st_size, stat.st_mtime_ns]


def _recipe_stamps(recipes: Path) -> List[Any]:
    try:
        return [_stamp(path) for path in sorted(recipes.iterdir())] + [_stamp(recipes)]
    except OSError:
        return []


def _key(site: Optional[str]) -> Optional[List[Any]]:
    """What the recipe facts depend on besides the recipes themselves; None: not cacheable (unknown site)."""
    from lute_kernel.site_files import find_site_file, site_name

    found = find_site_file(site)
    stamp = _stamp(found) if found is not None else None
    if stamp is None:
        return None  # load_site reports it
    return [site_name(site), stamp, os.environ.get("LUTE_RECIPES_DIR", "")]


def _cached(key: List[Any]) -> Optional[Tuple[Optional[Tuple[str, ...]], Dict[str, str]]]:
    try:
        data = json.loads(_cache_path().read_text())
        if data.get("version") != CACHE_VERSION or data.get("key") != key:
            return None
        if _recipe_stamps(Path(data["recipes"])) != data["recipe_stamps"]:
            return None
        known = data["known"]
        return (tuple(known) if known is not None else None), dict(data["notes"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _store(
    key: List[Any], recipes: Path, stamps: List[Any], known: Optional[Tuple[str, ...]], notes: Dict[str, str]
) -> None:
    data = {
        "version": CACHE_VERSION,
        "key": key,
        "recipes": str(recipes),
        "recipe_stamps": stamps,
        "known": list(known) if known is not None else None,
        "notes": notes,
    }
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:  # a cache that cannot be written only costs the next listing its speed
        pass


def recipe_facts(site: Optional[str]) -> Tuple[Optional[Tuple[str, ...]], Dict[str, str]]:
    """Return the images that have a recipe (None: no recipes folder) and each image's note."""
    key = _key(site)
    cached = _cached(key) if key is not None else None
    if cached is not None:
        return cached
    from lute_kernel.cli.task_table import image_notes
    from lute_kernel.file_stamps import settled
    from lute_kernel.images.paths import default_recipes_dir
    from lute_kernel.images.recipes import recipe_names
    from lute_kernel.sites import load_site

    recipes = default_recipes_dir(load_site(site))
    stamped_at = time.time_ns()
    stamps = _recipe_stamps(recipes)  # before the reads they stand for: a write after them moves them
    known = tuple(recipe_names(recipes)) if recipes.is_dir() else None
    notes = image_notes(recipes if known is not None else None)
    # A file written this tick may change again unseen (`lute_kernel.file_stamps`): read it next time too.
    if key is not None and settled((stamp[2] for stamp in [key[1], *stamps] if stamp is not None), stamped_at):
        _store(key, recipes, stamps, known, notes)
    return known, notes


def print_task_list(site: Optional[str], show_failures: bool = True) -> None:
    """Print every registered Task grouped by image, the counts per image, and modules that failed to load."""
    known, notes = recipe_facts(site)  # first: a bad site is reported before anything is printed

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from lute_kernel.cli.task_table import task_rows
    from lute_kernel.task_lookup import task_catalogue

    facts, failures = task_catalogue()  # cached per module: only edited modules are imported
    table = Table("Task", "image", "MPI", "GPU", "kind", "aliases", "description")
    rows = task_rows(facts, notes, known)
    for index, row in enumerate(rows):
        table.add_row(row.name, row.image, row.mpi, row.gpus, row.kind, row.aliases, Text(row.description))
        if index + 1 < len(rows) and rows[index + 1].image != row.image:
            table.add_section()  # one section per image
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(table)
    images = sorted({f.image for f in facts})
    counts = ", ".join(f"{image} {sum(f.image == image for f in facts)}" for image in images)
    console.print(f"{len(facts)} Tasks in {len(images)} images ({counts})", highlight=False)
    if show_failures and failures:
        for failure in failures:
            console.print(f"[red]failed to load[/red] {failure.source}: {failure.error}", highlight=False)
