"""The listing ``lute-kernel tasks`` prints: the table of Tasks by image, the counts, failed modules.

Owns laying the catalogue out with rich (box table on a terminal, 200 columns elsewhere). Imports
neither typer nor click: the lean entry (``cli.lean``) and the typer command both call
:func:`print_task_list`, so a plain ``tasks`` starts no faster or slower than what it shows needs.
Raises the kernel's errors (a bad site profile); the caller reports them.
"""

from __future__ import annotations

import sys
from typing import Optional


def print_task_list(site: Optional[str], show_failures: bool = True) -> None:
    """Print every registered Task grouped by image, the counts per image, and modules that failed to load."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from lute_kernel.cli.task_table import image_notes, task_rows
    from lute_kernel.images.paths import default_recipes_dir
    from lute_kernel.images.recipes import recipe_names
    from lute_kernel.sites import load_site
    from lute_kernel.task_lookup import task_catalogue

    recipes = default_recipes_dir(load_site(site))
    facts, failures = task_catalogue()  # cached per module: only edited modules are imported
    known = tuple(recipe_names(recipes)) if recipes.is_dir() else None
    table = Table("Task", "image", "MPI", "GPU", "kind", "aliases", "description")
    rows = task_rows(facts, image_notes(recipes if known is not None else None), known)
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
