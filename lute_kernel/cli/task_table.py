"""The rows of ``lute-kernel tasks``: each Task's image, MPI and GPU needs, from its class attributes.

Owns turning the registry into table rows: the image (and where it can be built, from its recipe's
metadata block: ``crystfel (s3df only)``), MPI (``MPI``, ``MPI, 3+ ranks``), GPUs, kind, aliases and the
one-line description. Reads class attributes and recipe metadata only: a Task module's heavy
dependencies (psana, h5py, cctbx, …) are imported inside ``run()``, never here. Prints nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from lute_kernel.errors import InputError
from lute_kernel.registry import Registry
from lute_kernel.task import TaskSpec


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


def mpi_need(spec: TaskSpec) -> str:
    """Return ``"-"`` for a one-process Task, else ``"MPI"`` with its default or fewest ranks when it has them."""
    cls = spec.cls
    if not cls.mpi:
        return "-"
    if cls.resources.ranks > 1:
        return f"MPI, {cls.resources.ranks} ranks"
    return f"MPI, {cls.min_ranks}+ ranks" if cls.min_ranks > 1 else "MPI"


def task_rows(
    registry: Registry, notes: Dict[str, str], known_images: Optional[Tuple[str, ...]] = None
) -> List[TaskRow]:
    """Return one row per registered Task, sorted by name.

    Args:
        registry: The discovered Tasks.
        notes: Per-image notes (:func:`image_notes`), shown after the image's name.
        known_images: Images that have a recipe; others are marked ``(no recipe)``. None: not checked.
    """
    rows = []
    for name in sorted(registry.tasks):
        spec = registry.tasks[name]
        cls = spec.cls
        image = cls.image
        note = notes.get(image)
        if known_images is not None and image not in known_images:
            note = "no recipe"
        gpus = cls.resources.gpus
        rows.append(
            TaskRow(
                name=name,
                image=f"{image} ({note})" if note else image,
                mpi=mpi_need(spec),
                gpus=f"{gpus} GPU{'s' if gpus > 1 else ''}" if gpus else "-",
                kind=cls.kind,
                aliases=", ".join(spec.aliases),
                description=cls.describe(),
            )
        )
    return rows
