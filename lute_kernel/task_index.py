"""An index of Task names → the module defining them, read from the source without executing it.

Owns knowing, before any Task module is imported, which file defines which Task (and its
aliases), so that ``run X`` imports X's module only and start-up does not grow with the catalogue.
Each module file is parsed with ``ast`` (never executed); a top-level class counts as a Task when
one of its bases is ``Task``/``ThirdPartyTask`` or, transitively, another indexed Task (by name,
across every indexed file). Results are cached per file, keyed by its size and mtime, in
``$XDG_CACHE_HOME/lute-kernel/task-index.json``, so a new, removed or edited module is noticed
at the next command. The entry points of the ``lute_kernel.tasks`` group are cached the same way,
keyed by the mtimes of the ``sys.path`` folders (installing a package changes its folder). A
process reads the cache file once while no other process replaces it (each run of a warm process
would parse it twice otherwise), and entries of files that no longer exist are dropped when it is
written.

The index is a shortcut, never the truth: ``lute_kernel.registry`` checks what it imports, and
falls back to importing everything when a name is not where the index said. Must not import
Task modules.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from lute_kernel.file_stamps import settled

CACHE_VERSION = 2
ENTRY_POINT_VARIANTS = 4
"""Entry-point answers kept per group, one per ``sys.path`` (the most recent first)."""
TASK_BASES = frozenset({"Task", "ThirdPartyTask"})


@dataclass(frozen=True)
class ClassFacts:
    """What the source says about one top-level class: its name, base names and literal aliases."""

    name: str
    bases: Tuple[str, ...]
    aliases: Tuple[str, ...]
    aliases_known: bool
    """False when ``aliases`` is assigned something other than a literal tuple/list of strings."""


@dataclass(frozen=True)
class IndexEntry:
    """One Task as the index knows it: where it is defined and the names it answers to."""

    name: str
    aliases: Tuple[str, ...]
    tasks_dir: str
    module: str
    source: str
    aliases_known: bool = True


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _literal_aliases(value: ast.expr) -> Optional[Tuple[str, ...]]:
    try:
        aliases = ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError):
        return None
    if isinstance(aliases, (tuple, list)) and all(isinstance(a, str) for a in aliases):
        return tuple(aliases)
    return None


def classes_in_source(text: str) -> List[ClassFacts]:
    """Return the top-level classes of a module's source (raises SyntaxError for broken code)."""
    found: List[ClassFacts] = []
    for node in ast.parse(text).body:
        if not isinstance(node, ast.ClassDef):
            continue
        aliases: Tuple[str, ...] = ()
        known = True
        for statement in node.body:
            targets: Sequence[ast.expr] = ()
            value: Optional[ast.expr] = None
            if isinstance(statement, ast.Assign):
                targets, value = statement.targets, statement.value
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                targets, value = (statement.target,), statement.value
            if value is not None and any(isinstance(t, ast.Name) and t.id == "aliases" for t in targets):
                literal = _literal_aliases(value)
                aliases, known = (literal, True) if literal is not None else ((), False)
        bases = tuple(b for b in (_base_name(base) for base in node.bases) if b)
        found.append(ClassFacts(node.name, bases, aliases, known))
    return found


def _cache_path() -> Path:
    from lute_kernel.user_cache import cache_root

    return Path(cache_root()) / "task-index.json"


_Stamp = Tuple[int, int, int, int]
_read: Dict[str, Tuple[_Stamp, Dict[str, Any], Dict[str, Any]]] = {}
"""The cache file as this process last read or wrote it, by path, with its (device, inode, size, mtime):
a warm process (``run A B C``, a flow) parses it again only when another process has replaced it."""


_facts_read: Dict[str, Tuple[Any, List[ClassFacts]]] = {}
"""The facts made from a cache entry (the entry object itself is the key's proof: a new entry, a new list)."""


def _stamp(path: Path) -> Optional[_Stamp]:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class _Cache:
    """The per-file facts and the entry-point list, read once, written back only when something changed."""

    def __init__(self) -> None:
        self.path = _cache_path()
        self.files: Dict[str, Any] = {}
        self.entry_points: Dict[str, Any] = {}
        self.changed = False
        stamp = _stamp(self.path)
        known = _read.get(str(self.path))
        if stamp is not None and known is not None and known[0] == stamp:
            self.files, self.entry_points = dict(known[1]), dict(known[2])  # entries are replaced, never changed
            return
        try:
            data = json.loads(self.path.read_text())
            if data.get("version") == CACHE_VERSION:
                self.files = dict(data.get("files") or {})
                self.entry_points = dict(data.get("entry_points") or {})
        except (OSError, ValueError, AttributeError):
            return
        if stamp is not None:
            _read[str(self.path)] = (stamp, dict(self.files), dict(self.entry_points))

    def facts(self, path: Path) -> Optional[List[ClassFacts]]:
        """Return the classes of one module file (None: it does not parse; importing it will say why)."""
        stamped_at = time.time_ns()  # the stamp before the read: a write after it moves the mtime
        try:
            stat = path.stat()
        except OSError:
            return None
        key, stamp = str(path), [stat.st_size, stat.st_mtime_ns]
        cached = self.files.get(key)
        if isinstance(cached, dict) and cached.get("stamp") == stamp:
            if cached.get("broken"):
                return None
            known = _facts_read.get(key)
            if known is not None and known[0] is cached:  # the same cache entry this process read before
                return list(known[1])
            facts = [ClassFacts(c[0], tuple(c[1]), tuple(c[2]), bool(c[3])) for c in cached.get("classes", [])]
            _facts_read[key] = (cached, facts)
            return list(facts)
        try:
            classes: Optional[List[ClassFacts]] = classes_in_source(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError):
            classes = None
        # A file written within this tick may change again unseen (`lute_kernel.file_stamps`): parsed next time too.
        if settled((stat.st_mtime_ns,), stamped_at):
            self.files[key] = {
                "stamp": stamp,
                "broken": classes is None,
                "classes": [[c.name, list(c.bases), list(c.aliases), c.aliases_known] for c in classes or []],
            }
            self.changed = True
        return classes

    def save(self) -> None:
        if not self.changed:
            return
        # Files that are gone (an old checkout, a deleted venv) go: every command reads the rest.
        self.files = {key: value for key, value in self.files.items() if os.path.exists(_file_of(key))}
        data = {"version": CACHE_VERSION, "files": self.files, "entry_points": self.entry_points}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".task-index-")
            with os.fdopen(fd, "w") as out:
                # dumps, not dump: only a one-shot encode uses the C encoder (~10x faster on a big cache).
                out.write(json.dumps(data, separators=(",", ":")))
            os.replace(tmp, self.path)
        except OSError:
            return  # a cache that cannot be written only costs the next command the parsing
        stamp = _stamp(self.path)
        if stamp is not None:
            _read[str(self.path)] = (stamp, dict(self.files), dict(self.entry_points))
        self.changed = False


def _file_of(key: str) -> str:
    """The module file a cache key is about (catalogue keys are ``catalogue:<path>``)."""
    return key[len("catalogue:") :] if key.startswith("catalogue:") else key


@dataclass
class TaskIndex:
    """Every Task the indexed folders' sources define, by name and alias."""

    entries: List[IndexEntry]
    broken: List[str]
    """Module files that do not parse (importing them will record why)."""
    uncertain: bool
    """True when some class's aliases are not literal: a name missing here may still exist."""

    def candidates(self, name: str) -> List[IndexEntry]:
        """Return the entries answering to ``name`` (by class name or alias)."""
        return [e for e in self.entries if e.name == name or name in e.aliases]

    def names(self) -> Set[str]:
        """Return every name and alias."""
        return {n for e in self.entries for n in (e.name, *e.aliases)}


def build_index(folders: Iterable[Path]) -> TaskIndex:
    """Index the Task modules (``*.py`` not starting with ``_``) of ``folders``, in order."""
    cache = _Cache()
    seen: Set[Path] = set()
    modules: List[Tuple[Path, Path, List[ClassFacts]]] = []
    broken: List[str] = []
    every_class: Dict[str, List[ClassFacts]] = {}
    for folder in folders:
        resolved = folder.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        for path in sorted(resolved.glob("*.py")):
            facts = cache.facts(path)
            if facts is None:
                if not path.name.startswith("_"):
                    broken.append(str(path))
                continue
            for fact in facts:  # helper modules (``_x.py``) may define bases of Tasks
                every_class.setdefault(fact.name, []).append(fact)
            if not path.name.startswith("_"):
                modules.append((resolved, path, facts))
    cache.save()
    tasks = _task_class_names(every_class)
    entries: List[IndexEntry] = []
    uncertain = False
    for folder, path, facts in modules:
        for fact in facts:
            if fact.name in tasks and fact.name not in TASK_BASES and not fact.name.startswith("_"):
                entries.append(
                    IndexEntry(fact.name, fact.aliases, str(folder), path.stem, str(path), fact.aliases_known)
                )
                uncertain = uncertain or not fact.aliases_known
    return TaskIndex(entries, broken, uncertain)


def _task_class_names(every_class: Dict[str, List[ClassFacts]]) -> Set[str]:
    tasks: Set[str] = set(TASK_BASES)
    grew = True
    while grew:  # a fixed point: a class deriving from a Task (in any indexed file) is a Task
        grew = False
        for name, facts in every_class.items():
            if name not in tasks and any(base in tasks for fact in facts for base in fact.bases):
                tasks.add(name)
                grew = True
    return tasks


def cached_entry_points(group: str) -> List[Tuple[str, str]]:
    """Return ``(name, value)`` of the group's entry points, cached until a ``sys.path`` folder changes."""
    stamped_at = time.time_ns()
    stamps: List[List[Any]] = []
    for entry in sys.path:
        try:
            stamps.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            stamps.append([entry, None])
    cache = _Cache()
    kept = cache.entry_points.get(group)
    variants = [kept] if isinstance(kept, dict) else [v for v in kept or [] if isinstance(v, dict)]
    for cached in variants:
        if cached.get("stamps") == stamps:
            return [(str(n), str(v)) for n, v in cached.get("entries", [])]
    from importlib import metadata

    found = metadata.entry_points()
    # Python 3.9 gives a dict of group -> entry points; later ones a selectable collection.
    selected = list(found.select(group=group)) if hasattr(found, "select") else list(found.get(group, []))
    entries = [(e.name, e.value) for e in selected]
    if settled((mtime for _, mtime in stamps), stamped_at):
        # One answer per sys.path the group was asked with (`lute-kernel` and `python -m` differ by
        # their first entry): two ways of starting the kernel in turn must not scan every time.
        variants = [{"stamps": stamps, "entries": [list(e) for e in entries]}, *variants][:ENTRY_POINT_VARIANTS]
        cache.entry_points[group] = variants
        cache.changed = True
        cache.save()
    return entries
