"""The rows of ``lute-kernel tasks``: each Task's image, MPI and GPU needs, from its class attributes.

Owns turning the catalogue's facts into table rows: the image (and where it can be built, from its recipe's
metadata block: ``crystfel (s3df only)``), MPI (``MPI``, ``MPI, 3+ ranks``), GPUs, kind, aliases and the
one-line description. Reads class attributes and recipe metadata only: a Task module's heavy
dependencies (psana, h5py, cctbx, …) are imported inside ``run()``, never here. Prints nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from lute_kernel.errors import InputError
from lute_kernel.task_catalogue import TaskFacts


@dataclass(frozen=True)
class TaskRow:
    """One line of the table."""

    name: str
    image: str
    mpi: str
    gpus: str
    kind: str
    aliases: str
    description: str


def image_notes(recipes_dir: Optional[Path]) -> Dict[str, str]:
    """Return ``{image: "s3df only"}`` for the site-restricted recipes of ``recipes_dir`` (unreadable ones skipped)."""
    if recipes_dir is None:
        return {}
    from lute_kernel.images.paths import RECIPE_SUFFIX
    from lute_kernel.images.recipes import read_meta, recipe_names  # yaml + pydantic: cheap

    notes: Dict[str, str] = {}
    try:
        names = recipe_names(recipes_dir)
    except OSError:
        return {}
    for name in names:
        try:
            meta = read_meta(recipes_dir / f"{name}{RECIPE_SUFFIX}")
        except (InputError, OSError, UnicodeDecodeError):
            notes[name] = "recipe unreadable"
            continue
        if meta.sites:
            notes[name] = f"{', '.join(meta.sites)} only"
    return notes


def mpi_need(facts: TaskFacts) -> str:
    """Return ``"-"`` for a one-process Task, else ``"MPI"`` with its default or fewest ranks when it has them."""
    if not facts.mpi:
        return "-"
    if facts.ranks > 1:
        return f"MPI, {facts.ranks} ranks"
    return f"MPI, {facts.min_ranks}+ ranks" if facts.min_ranks > 1 else "MPI"


def task_rows(
    facts: Iterable[TaskFacts], notes: Dict[str, str], known_images: Optional[Tuple[str, ...]] = None
) -> List[TaskRow]:
    """Return one row per Task, grouped by image (sorted), then by name.

    Args:
        facts: What the catalogue knows of each Task (``lute_kernel.registry.task_catalogue``).
        notes: Per-image notes (:func:`image_notes`), shown after the image's name.
        known_images: Images that have a recipe; others are marked ``(no recipe)``. None: not checked.
    """
    rows = []
    for fact in sorted(facts, key=lambda f: (f.image, f.name)):
        note = notes.get(fact.image)
        if known_images is not None and fact.image not in known_images:
            note = "no recipe"
        rows.append(
            TaskRow(
                name=fact.name,
                image=f"{fact.image} ({note})" if note else fact.image,
                mpi=mpi_need(fact),
                gpus=f"{fact.gpus} GPU{'s' if fact.gpus > 1 else ''}" if fact.gpus else "-",
                kind=fact.kind,
                aliases=", ".join(fact.aliases),
                description=fact.description,
            )
        )
    return rows
