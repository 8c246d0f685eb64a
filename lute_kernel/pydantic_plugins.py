"""Pydantic's plugin lookup answered without ``importlib.metadata`` when no plugin is installed.

Why: the first time pydantic builds a validator it imports its plugin loader, which imports
``importlib.metadata`` (email, zipfile, csv… ~15-20 ms here) and reads the metadata of every
installed distribution for the ``pydantic`` entry-point group: together ~20-40 ms of every kernel
start-up and of every worker in a container, for an answer that is almost always "none".

`skip_lookup_when_none` reads the ``entry_points.txt`` of each distribution on ``sys.path`` itself
(~2 ms) and, only when none of them declares that group, puts a stand-in for pydantic's loader in
``sys.modules`` whose ``get_plugins()`` gives that same empty answer; any other name of the loader
is taken from the real module, imported then. Anything it cannot read the way
``importlib.metadata`` would — a zip or egg on ``sys.path``, another finder that lists
distributions, an unreadable file, a section that merely mentions ``pydantic`` — counts as "a
plugin may be there", and pydantic looks them up itself, as always. So is it when
``PYDANTIC_DISABLE_PLUGINS`` is set (pydantic's own switch decides) or the loader is already
imported. Must be called before pydantic builds its first validator; never changes what pydantic finds.
"""

from __future__ import annotations

import os
import sys
import types

TYPE_CHECKING = False  # not typing's: the worker imports this first, before anything else
if TYPE_CHECKING:
    from typing import Any, Optional, Tuple

__all__ = ["LOADER", "declares_group", "skip_lookup_when_none"]

LOADER = "pydantic.plugin._loader"
"""The module of pydantic 2 whose ``get_plugins()`` reads the entry points."""

GROUP = "pydantic"
"""The entry-point group pydantic's plugins declare."""

_METADATA_SUFFIXES = (".dist-info", ".egg-info")


def _mentions(text: str, group: str) -> bool:
    """True when any section header of an ``entry_points.txt`` could name ``group`` (spelling aside)."""
    return any(line.lstrip().startswith("[") and group in line.lower() for line in text.splitlines())


def declares_group(group: str, path: Optional[Tuple[str, ...]] = None) -> Optional[bool]:
    """Return whether a distribution on ``path`` (default ``sys.path``) declares entry points of ``group``.

    None when it cannot tell the way ``importlib.metadata`` would (see the module docstring).
    """
    if any(hasattr(finder, "find_distributions") and finder is not _path_finder() for finder in sys.meta_path):
        return None  # a finder of its own lists distributions we would not see
    for entry in sys.path if path is None else path:
        folder = entry or "."
        if folder.endswith(".egg"):
            return None
        try:
            names = os.listdir(folder)
        except NotADirectoryError:
            return None  # a zip file on the path: its distributions are inside it
        except OSError:
            continue  # a folder that is not there holds nothing, for importlib.metadata too
        for name in names:
            if not name.lower().endswith(_METADATA_SUFFIXES):
                continue
            try:
                with open(os.path.join(folder, name, "entry_points.txt"), encoding="utf-8") as handle:
                    text = handle.read()
            except (FileNotFoundError, NotADirectoryError):
                continue  # no entry points (or an old egg-info file)
            except (OSError, UnicodeDecodeError):
                return None
            if _mentions(text, group):
                return True
    return False


def _path_finder() -> Any:
    import importlib.machinery

    return importlib.machinery.PathFinder


class _NoPluginsLoader(types.ModuleType):
    """Stands in for pydantic's plugin loader: no plugins; any other name from the real loader."""

    PYDANTIC_ENTRY_POINT_GROUP = GROUP
    _loading_plugins = False

    def __init__(self) -> None:
        super().__init__(LOADER, "no pydantic plugin is installed (lute_kernel.pydantic_plugins)")
        self._plugins: dict[str, Any] = {}

    def get_plugins(self) -> Tuple[Any, ...]:
        """Return the plugins pydantic would load: none, as the installed metadata says."""
        return ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # the import system asks for ``__path__`` and the like: not the loader's
            raise AttributeError(name)
        if sys.modules.get(LOADER) is self:
            del sys.modules[LOADER]
        import importlib

        return getattr(importlib.import_module(LOADER), name)  # the real one answers from now on


def skip_lookup_when_none() -> bool:
    """Install the stand-in loader when no distribution declares pydantic plugins; return True if installed."""
    if LOADER in sys.modules or os.environ.get("PYDANTIC_DISABLE_PLUGINS") is not None:
        return False
    if declares_group(GROUP) is not False:
        return False
    sys.modules[LOADER] = _NoPluginsLoader()
    return True
