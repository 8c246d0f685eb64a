"""Where site profiles are: the search path and the file a site name or path stands for.

Owns finding profile files — ``LUTE_SITE_PATH`` (folders or files, first wins), then the shipped
profiles (``LUTE_SITES_DIR`` instead when set) — without reading or validating them (that is
``lute_kernel.sites``, which needs pydantic). Light on purpose: ``tasks`` uses it to tell whether
the profile behind its cached listing changed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional

from lute_kernel.resources import packaged_dir

DEFAULT_SITE = "local"


def sites_dir() -> Path:
    """Return the folder of the shipped site profiles (``LUTE_SITES_DIR`` replaces it)."""
    override = os.environ.get("LUTE_SITES_DIR")
    return Path(override) if override else packaged_dir("sites")


def search_path() -> List[Path]:
    """``LUTE_SITE_PATH`` (folders or profile files, first wins), then the shipped profiles."""
    extra = [Path(p).expanduser() for p in os.environ.get("LUTE_SITE_PATH", "").split(os.pathsep) if p]
    return [*extra, sites_dir()]


def profiles_in(entry: Path) -> Dict[str, Path]:
    """The profiles one search-path entry holds: name -> file."""
    if entry.suffix in (".yaml", ".yml") and not entry.is_dir():
        return {entry.stem: entry}
    try:
        return {p.stem: p for p in sorted(entry.glob("*.yaml"))}
    except OSError:
        return {}


def available_sites() -> List[str]:
    """Return the names of the site profiles found."""
    names: set[str] = set()
    for entry in search_path():
        names.update(profiles_in(entry))
    return sorted(names)


def looks_like_path(name: str) -> bool:
    """A ``--site`` value naming a file rather than a profile."""
    return os.sep in name or name.endswith((".yaml", ".yml")) or name.startswith("~")


def site_name(name: Optional[str]) -> str:
    """The site asked for: ``name``, else ``LUTE_SITE``, else the default."""
    return name or os.environ.get("LUTE_SITE") or DEFAULT_SITE


def find_site_file(name: Optional[str]) -> Optional[Path]:
    """Return the profile file ``name`` stands for (as ``load_site`` would choose it), or None: unknown."""
    chosen = site_name(name)
    if looks_like_path(chosen):
        return Path(chosen).expanduser().absolute()
    for entry in search_path():
        found = profiles_in(entry).get(chosen)
        if found is not None:
            return found
    return None
