"""The kernel's package data: the site profiles and image recipes that ship with it.

Owns finding them through ``importlib.resources`` as ``lute_kernel/data/sites`` and
``lute_kernel/data/recipes``, the same way from a checkout (where those two are links to the
repository's ``config/sites/`` and ``recipes/``), an editable install and a wheel (where they are
copies). Must not read or choose among the files: ``lute_kernel.sites`` and
``lute_kernel.images.paths`` do, and both let the environment or a site name another folder.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from lute_kernel.errors import InputError


@functools.cache  # where the package is does not change while it runs
def packaged_dir(name: str) -> Path:
    """Return the real folder of ``lute_kernel/data/<name>`` (links resolved, so messages name the repo's files).

    Raises:
        InputError: The kernel was imported from somewhere without real files (a zip).
    """
    folder = resources.files("lute_kernel") / "data" / name
    if not isinstance(folder, Path):
        raise InputError(f"lute_kernel's {name} are not files on disk ({folder}): install lute-kernel unzipped")
    return folder.resolve()
