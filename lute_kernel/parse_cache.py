"""Parsed YAML kept on disk by its text, so a command whose files have not changed does not import PyYAML.

Why: importing PyYAML costs every ``run`` ~10 ms here, and parsing its config and site profile
1-3 ms more, for files read far more often than they change. An entry is the JSON of one parse,
named by the SHA-256 of everything the parse depends on: the kind of file, its exact text, the
caller's ``detail`` (the parse's limits; the size and mtime of the modules whose code made it,
`file_stamps`, so an edited checkout makes no stale entry), this kernel's version and the PyYAML
installed (its ``__init__.py``'s path, size and mtime, found without importing it). An edited
file, other limits, another kernel or another PyYAML is another entry: nothing can go stale. Only
parses that JSON gives back equal are kept (``lute_kernel.json_exact``: a date, bytes, a set or a
non-str key are parsed again every time), and only successful ones: every error comes from
PyYAML itself, each time.

Entries live in ``$XDG_CACHE_HOME/lute-kernel/parsed/`` (a 0700 folder of this user's), at most
`MAX_ENTRIES` of them (the least recently used go first). A missing, unreadable or malformed
entry is a miss, and a cache that cannot be written only costs the next command the parse.
``LUTE_NO_PARSE_CACHE=1`` turns it off. Stdlib only: the point is what it does not import.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: imported on the run path before pydantic
if TYPE_CHECKING:
    from typing import Any, Optional

__all__ = ["MAX_ENTRIES", "cache_dir", "file_stamps", "load", "store"]

MAX_ENTRIES = 256
"""Parses kept: every config and site profile a user runs with in a while."""

_FORMAT = 1
_DISABLE = "LUTE_NO_PARSE_CACHE"


def cache_dir() -> str:
    """The folder of the entries (``$XDG_CACHE_HOME/lute-kernel/parsed``)."""
    from lute_kernel.user_cache import cache_root

    return os.path.join(cache_root(), "parsed")


def file_stamps(*paths: str) -> str:
    """The path, size and mtime of each file, for a ``detail`` that changes when the code behind a parse does."""
    stamps = []
    for path in paths:
        try:
            info = os.stat(path)
            stamps.append(f"{path}:{info.st_size}:{info.st_mtime_ns}")
        except OSError:
            stamps.append(f"{path}:-")
    return "|".join(stamps)


def _pyyaml_stamp() -> Optional[str]:
    """Where the PyYAML that would be imported lives, with its size and mtime; None: not found as a plain package."""
    for entry in sys.path:
        init = os.path.join(entry or ".", "yaml", "__init__.py")
        try:
            info = os.stat(init)
        except OSError:
            continue
        return f"{init}:{info.st_size}:{info.st_mtime_ns}"
    return None


def _entry(kind: str, text: str, detail: str) -> Optional[str]:
    """The entry's file for this parse, or None when nothing may be cached."""
    if os.environ.get(_DISABLE) not in (None, "", "0"):
        return None
    stamp = _pyyaml_stamp()
    if stamp is None:
        return None
    import hashlib

    from lute_kernel import __version__

    key = "\0".join((str(_FORMAT), kind, detail, __version__, stamp, text))
    return os.path.join(cache_dir(), hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest() + ".json")


def load(kind: str, text: str, detail: str = "") -> Optional[Any]:
    """Return the parse kept for ``text`` (of this ``kind``, with this ``detail``, e.g. the limits), or None."""
    path = _entry(kind, text, detail)
    if path is None:
        return None
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            kept = json.load(handle)
        os.utime(path)  # recently used: kept longest
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("format") != _FORMAT or "value" not in kept:
        return None
    return kept["value"]


def store(kind: str, text: str, value: Any, detail: str = "") -> None:
    """Keep ``value``, the parse of ``text``, when JSON gives it back equal (silently not, otherwise)."""
    from lute_kernel.json_exact import round_trips

    path = _entry(kind, text, detail)
    if path is None or not round_trips(value):
        return
    import json

    from lute_kernel.user_cache import evict, write_entry

    try:
        write_entry(path, json.dumps({"format": _FORMAT, "value": value}, separators=(",", ":")), prefix=".parsed-")
        evict(os.path.dirname(path), MAX_ENTRIES)
    except (OSError, ValueError):
        return
