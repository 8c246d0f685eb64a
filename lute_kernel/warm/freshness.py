"""Whether a warm kernel's code is still the code on disk: the files it imported, and their times.

Owns the fingerprint (each imported file's modification time, taken once the server has imported
everything) and the check before each command (one ``stat`` per file, ~1 ms for ~800 files).
"""

from __future__ import annotations

import os
import sys
from typing import Dict, Optional

from lute_kernel.file_stamps import settled

UNTRUSTED = -2
"""The time kept for a file written so recently that it may change again without its time moving
(`lute_kernel.file_stamps`): it never matches, so the first command runs cold and a fresh server
takes the fingerprint again."""


def fingerprint() -> Dict[str, int]:
    """Return the modification time of every file this process imported."""
    out = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            try:
                mtime = os.stat(path).st_mtime_ns
            except OSError:
                out[path] = -1
                continue
            out[path] = mtime if settled((mtime,)) else UNTRUSTED
    return out


def changed(snapshot: Dict[str, int]) -> Optional[str]:
    """Return a file imported at start that has changed since, or None."""
    for path, mtime in snapshot.items():
        try:
            now = os.stat(path).st_mtime_ns
        except OSError:
            now = -1
        if now != mtime:
            return path
    return None


__all__ = ["UNTRUSTED", "changed", "fingerprint"]
