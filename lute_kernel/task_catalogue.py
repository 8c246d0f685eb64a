"""What ``lute-kernel tasks`` lists of every Task — name, image, kind, aliases, needs — cached per module file.

Owns the catalogue: a module's facts are learned by importing it once (through the registry's own
guarded import), then kept in the index cache keyed by the file's size and mtime and its folder's
helper modules, so listing the catalogue imports only modules that changed. Failures are never
cached (an install may fix a module without editing it). Must not decide conflicts or print.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Set, Tuple

from lute_kernel.file_stamps import settled
from lute_kernel.task_index import _Cache


@dataclass(frozen=True)
class TaskFacts:
    """What ``lute-kernel tasks`` shows of one Task, as importing its module told it (cached per file)."""

    name: str
    image: str
    kind: str
    aliases: Tuple[str, ...]
    description: str
    mpi: bool
    min_ranks: int
    gpus: int
    source: str
    ranks: int = 1

    @classmethod
    def from_dict(cls, entry: Dict[str, Any]) -> TaskFacts:
        """Build from the JSON form kept in the cache."""
        return cls(**{**entry, "aliases": tuple(entry["aliases"])})


def catalogue(folders: Iterable[Path], load: Any) -> Tuple[List[TaskFacts], List[Tuple[str, str]]]:
    """Return the facts of every Task in ``folders`` and the modules that failed to load.

    ``load(folder, path)`` imports one module and returns its Tasks' facts (a list of dicts with
    TaskFacts' fields) or a failure string. It is called only for modules whose size or mtime
    changed since the facts were cached; failures are never cached (a module may be fixed by an
    install, not an edit), so they are retried every time.
    """
    cache = _Cache()
    facts: List[TaskFacts] = []
    failures: List[Tuple[str, str]] = []
    seen: Set[Path] = set()
    for folder in folders:
        resolved = folder.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        helpers_at = time.time_ns()
        helpers = _helpers_stamp(resolved)  # once per folder: every module of it shares the helpers
        for path in sorted(resolved.glob("*.py")):
            if path.name.startswith("_"):
                continue
            stamped_at = time.time_ns()  # before the stamp and the import it stands for
            try:
                stat = path.stat()
            except OSError:
                continue
            key, stamp = f"catalogue:{path}", [stat.st_size, stat.st_mtime_ns, helpers]
            cached = cache.files.get(key)
            if isinstance(cached, dict) and cached.get("stamp") == stamp:
                found = cached.get("tasks", [])
            else:
                found = load(resolved, path)
                if isinstance(found, str):
                    failures.append((str(path), found))
                    continue
                # A file written within this tick may change again unseen (`file_stamps`): loaded next time too.
                if settled((stat.st_mtime_ns,), stamped_at) and settled((helpers[1],), helpers_at):
                    cache.files[key] = {"stamp": stamp, "tasks": found}
                    cache.changed = True
            facts.extend(TaskFacts.from_dict(entry) for entry in found)
    cache.save()
    return facts, failures


def _helpers_stamp(folder: Path) -> List[int]:
    """The folder's helper modules (``_x.py``) shape its Tasks too: their sizes and mtimes, summed."""
    size = mtime = 0
    for path in folder.glob("_*.py"):
        try:
            stat = path.stat()
        except OSError:
            continue
        size += stat.st_size
        mtime = max(mtime, stat.st_mtime_ns)
    return [size, mtime]
