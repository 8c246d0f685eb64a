"""This user's cache folder for the kernel, and the two things every entry in it needs: an atomic write, an LRU bound.

Owns ``$XDG_CACHE_HOME/lute-kernel`` (``~/.cache/lute-kernel`` without it) and its entry files:
written whole (a temporary file replaced in one step, so a reader never sees half an entry),
in folders of mode 0700 (entries hold configs and environments), and trimmed to the most recently
used ones. The parse cache, the Task index and the launch memo keep their entries here. Stdlib only.
"""

from __future__ import annotations

import os


def cache_root() -> str:
    """The kernel's cache folder for this user (``$XDG_CACHE_HOME/lute-kernel``)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "lute-kernel")


def write_entry(path: str, text: str, *, prefix: str = ".entry-") -> None:
    """Write ``text`` to ``path`` atomically, making its folder (0700) if needed; OSError when it cannot."""
    import tempfile

    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def evict(folder: str, keep: int, *, suffix: str = ".json") -> None:
    """Remove the least recently used entries (by mtime; a hit touches its entry) beyond ``keep``."""
    entries = []
    for name in os.listdir(folder):
        if name.endswith(suffix):
            try:
                entries.append((os.stat(os.path.join(folder, name)).st_mtime_ns, name))
            except OSError:
                pass
    entries.sort()
    for _, name in entries[: max(0, len(entries) - keep)]:
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:
            pass
