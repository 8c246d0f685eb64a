"""Sparing pydantic its plugin search when the kernel already knows there is no plugin to find.

Owns one decision: pydantic looks through every installed distribution's entry points for the
``pydantic`` group when it builds its first model (~17-23 ms per command in a venv of 130 packages).
The kernel keeps the entry points it has seen per group, cached until a ``sys.path`` folder changes
(`lute_kernel.task_index.cached_entry_points`); when that list is empty, pydantic is told so with its
own switch (``PYDANTIC_DISABLE_PLUGINS``) and skips the search. An installed plugin is still found
and loaded, and a value the user set is left alone. Tasks never see the switch: their environment is
built from the site's allowlist. A warm kernel does not use it: it lets pydantic search once, and
every command it forks inherits the (empty) result.
"""

from __future__ import annotations

import os

SWITCH = "PYDANTIC_DISABLE_PLUGINS"

__all__ = ["SWITCH", "skip_search_when_none_installed"]


def skip_search_when_none_installed() -> None:
    """Tell pydantic not to search for plugins if this Python has none (call before its first model)."""
    if SWITCH in os.environ:
        return
    from lute_kernel.task_index import cached_entry_points

    if not cached_entry_points("pydantic"):
        os.environ[SWITCH] = "__all__"
