"""Shell completion of Task names, image names and config sections (typer's ``--install-completion``).

Owns the completion callbacks the commands name. Each looks things up the way the command itself
would (the registry, the recipes folder, the config file named on the line so far) and answers
``[]`` whatever goes wrong: a shell's completion must never print a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

__all__ = ["complete_image", "complete_section", "complete_task"]


def _starting(names: List[str], incomplete: str) -> List[str]:
    return sorted(name for name in set(names) if name.startswith(incomplete))


def complete_task(incomplete: str) -> List[str]:
    """Return the Task names and aliases starting with ``incomplete``."""
    try:
        from lute_kernel.registry import discover

        registry = discover()
        return _starting([*registry.tasks, *registry.aliases], incomplete)
    except Exception:
        return []


def complete_image(ctx: typer.Context, incomplete: str) -> List[str]:
    """Return the image (recipe) names of the site (``--site`` so far) starting with ``incomplete``."""
    try:
        from lute_kernel.images.paths import default_recipes_dir
        from lute_kernel.images.recipes import recipe_names
        from lute_kernel.sites import load_site

        return _starting(recipe_names(default_recipes_dir(load_site(ctx.params.get("site")))), incomplete)
    except Exception:
        return []


def complete_section(ctx: typer.Context, incomplete: str) -> List[str]:
    """Return the sections of the config named by ``--config`` so far, starting with ``incomplete``."""
    try:
        from lute_kernel.config import load_config

        config = ctx.params.get("config")
        if not config:
            return []
        return _starting(load_config(Path(config)).section_names(), incomplete)
    except Exception:
        return []
