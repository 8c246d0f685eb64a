"""Looking Tasks up without importing the whole catalogue: one Task's module for ``run``, cached facts for ``tasks``.

Owns the two shortcuts over :mod:`lute_kernel.registry`'s discovery: :func:`registry_for` imports
only the modules the source index says define the names asked for (and falls back to a full
discovery whenever the index cannot settle a name), and :func:`task_catalogue` lists every Task
from the per-module cached facts. Both give the answers (and conflicts) a full discovery gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple

from lute_kernel.import_guard import import_timeout
from lute_kernel.registry import (
    LoadFailure,
    Registry,
    TaskEntryPoint,
    _Discovery,
    _entry_points,
    default_tasks_dirs,
    discover,
)
from lute_kernel.task_index import build_index

if TYPE_CHECKING:
    from lute_kernel.task import TaskSpec
    from lute_kernel.task_catalogue import TaskFacts


def registry_for(
    names: Iterable[str], tasks_dirs: Optional[Iterable[Path]] = None, *, entry_points: bool = True
) -> Registry:
    """Return a registry that holds the Tasks answering to ``names``, importing only their modules.

    Which module defines which name comes from the source index (``lute_kernel.task_index``); what
    is imported is checked, and anything the index cannot settle — an unknown name, a name missing
    after the import, an entry point that is a plain module — falls back to :func:`discover`, so the
    answer (and every error message) is the one a full discovery gives.
    """
    wanted = list(dict.fromkeys(names))
    timeout_s, problem = import_timeout()
    if problem:
        return discover(tasks_dirs, entry_points=entry_points)
    discovery = _Discovery(Registry(), timeout_s)
    folders: List[Path] = [Path(d) for d in (default_tasks_dirs() if tasks_dirs is None else tasks_dirs)]
    if entry_points:
        for entry in _entry_points():
            located = discovery.entry_point_folders(entry)
            if located is None:
                return discover(tasks_dirs, entry_points=entry_points)  # a plain module: only importing tells
            folders.extend(located)
    index = build_index(folders)
    if not all(index.candidates(name) for name in wanted):
        return discover(tasks_dirs, entry_points=entry_points)
    # Every Task sharing a name with one we import is imported too: an alias of a name in
    # conflict is as ambiguous as the name (a Task on LUTE_TASKS_PATH may shadow a built-in).
    names, sources = set(wanted), {}
    while True:
        found = [e for name in sorted(names) for e in index.candidates(name)]
        sources.update({(e.tasks_dir, e.source): e for e in found})
        grown = names | {n for e in found for n in (e.name, *e.aliases)}
        if grown == names:
            break
        names = grown
    for tasks_dir, source in sources:
        discovery.module(Path(tasks_dir), Path(source))
    registry = discovery.registry
    if registry.failures or not all(registry.knows(name) for name in wanted):
        return discover(tasks_dirs, entry_points=entry_points)
    registry.failures.extend(registry.conflict_failures())
    return registry


def task_catalogue(tasks_dirs: Optional[Iterable[Path]] = None) -> Tuple[List[TaskFacts], List[LoadFailure]]:
    """Return what ``lute-kernel tasks`` lists — every Task's facts — importing only changed modules.

    The facts of a module are cached with its size and mtime (``lute_kernel.task_index``); names
    claimed twice are reported as conflicts, as :func:`discover` does. Entry points that are plain
    modules (not folders) are imported every time.
    """
    from lute_kernel.task_catalogue import catalogue  # for listings only: `run` needs one Task's module

    timeout_s, problem = import_timeout()
    failures: List[LoadFailure] = [LoadFailure("environment", problem)] if problem else []
    discovery = _Discovery(Registry(), timeout_s)
    folders: List[Path] = [Path(d) for d in (default_tasks_dirs() if tasks_dirs is None else tasks_dirs)]
    plain: List[TaskEntryPoint] = []
    for entry in _entry_points():
        located = discovery.entry_point_folders(entry)
        if located is None:
            plain.append(entry)
        else:
            folders.extend(located)

    def load(folder: Path, path: Path) -> object:
        one = _Discovery(Registry(), timeout_s)
        one.module(folder, path)
        if one.registry.failures:
            return one.registry.failures[0].error
        return [_facts(spec) for spec in one.registry.tasks.values()]

    facts, failed = catalogue(folders, load)
    failures.extend(LoadFailure(source, error) for source, error in failed)
    for entry in plain:
        discovery.entry_point(entry)
    facts.extend(TaskFacts.from_dict(_facts(spec)) for spec in discovery.registry.tasks.values())
    failures.extend(f for f in discovery.registry.failures if f.source != "environment")
    claims: Dict[str, List[str]] = {}
    for fact in facts:
        for name in (fact.name, *fact.aliases):
            claims.setdefault(name, []).append(fact.source)
    for name, sources in sorted(claims.items()):
        if len(set(sources)) > 1:
            failures.append(LoadFailure(f"Task name {name!r}", f"claimed {len(sources)} times ({'; '.join(sources)})"))
    return facts, failures


def _facts(spec: TaskSpec) -> Dict[str, Any]:
    cls = spec.cls
    return {
        "name": spec.name,
        "image": cls.image,
        "kind": cls.kind,
        "aliases": list(spec.aliases),
        "description": cls.describe(),
        "mpi": bool(cls.mpi),
        "min_ranks": int(cls.min_ranks),
        "gpus": int(cls.resources.gpus),
        "source": spec.source,
        "ranks": int(cls.resources.ranks),
    }
