"""Find Tasks: Task folders by path, Task packages by entry point; look them up by name.

Owns discovery and name lookup (class names and upstream aliases). There is no list of Tasks
anywhere: every ``Task`` subclass defined in a discovered module is registered under its class
name. Where Tasks come from: the folders of ``LUTE_TASKS_PATH``, then the packages and modules of
the ``lute_kernel.tasks`` entry-point group (the kernel's own ``lute_kernel_tasks``, the
repository's ``tasks/`` folder, is always among them, installed or not). A package is read like a
folder; a folder found twice (by path and by entry point) is read once.

Nothing a Task module does at import ends the command: an exception, ``sys.exit()`` or a hang
(bounded by ``LUTE_TASK_IMPORT_TIMEOUT``, default 10 s) is a recorded load failure, shown by
``lute-kernel tasks``. A name (or alias) that two different Tasks claim is never resolved silently:
it is a recorded conflict, and looking it up is an ``AmbiguousTaskError`` naming every source.
The worker uses :func:`import_task` to re-import one Task in its own process.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Dict, Iterable, List, NamedTuple, Optional, Set, Tuple

from lute_kernel.errors import InputError, UnknownTaskError
from lute_kernel.import_guard import guarded, import_timeout
from lute_kernel.task_index import cached_entry_points

if TYPE_CHECKING:  # imported when a module is registered: a warm `tasks` listing never needs pydantic
    from lute_kernel.task import Task, TaskSpec

ENTRY_POINT_GROUP = "lute_kernel.tasks"
BUILTIN_TASK_PACKAGE = "lute_kernel_tasks"
"""The kernel's own Tasks (the repository's ``tasks/`` folder): an entry point of the group, and
looked up by name as well, so a checkout on PYTHONPATH or an install with stale metadata finds them."""
TASKS_PACKAGE = "lute_tasks"


class AmbiguousTaskError(InputError):
    """Two different Tasks claim one name (or alias): neither is run until one is renamed or removed."""


@dataclass(frozen=True)
class LoadFailure:
    """A Task module that could not be imported (or a name two Tasks claim), and why."""

    source: str
    error: str


@dataclass
class Registry:
    """Every Task found, by name, with its aliases, the names in conflict and the modules that failed to load."""

    tasks: Dict[str, TaskSpec] = field(default_factory=dict)
    aliases: Dict[str, str] = field(default_factory=dict)
    failures: List[LoadFailure] = field(default_factory=list)
    conflicts: Dict[str, List[str]] = field(default_factory=dict)
    """Names two or more different Tasks claim -> the sources claiming them, in discovery order."""

    def _holder(self, name: str) -> Optional[TaskSpec]:
        if name in self.tasks:
            return self.tasks[name]
        return self.tasks.get(self.aliases[name]) if name in self.aliases else None

    def add(self, spec: TaskSpec) -> None:
        """Register a Task under its name and aliases; a name another Task holds becomes a conflict."""
        holder = self._holder(spec.name)
        if holder is not None and _origin(holder) == _origin(spec):
            return  # the same class found twice (its folder by path and by entry point): one Task
        holders = {n: self._holder(n) for n in (spec.name, *spec.aliases)}  # before any is moved to conflicts
        clashes = {n for n, held in holders.items() if n in self.conflicts or held is not None}
        for name in sorted(clashes):
            self._conflict(name, holders[name], spec)
        if spec.name not in clashes:
            self.tasks[spec.name] = spec
        for alias in spec.aliases:
            if alias not in clashes:
                self.aliases[alias] = spec.name

    def _conflict(self, name: str, holder: Optional[TaskSpec], spec: TaskSpec) -> None:
        sources = self.conflicts.setdefault(name, [])
        if holder is not None:
            sources.append(_claim(holder, name))
            self.tasks.pop(name, None)
            self.aliases.pop(name, None)
        sources.append(_claim(spec, name))

    def conflict_failures(self) -> List[LoadFailure]:
        """Return one failure line per name in conflict (what ``lute-kernel tasks`` shows)."""
        return [
            LoadFailure(
                f"Task name {name!r}",
                f"claimed {len(sources)} times ({'; '.join(sources)}): `run {name}` refuses it until one is renamed",
            )
            for name, sources in sorted(self.conflicts.items())
        ]

    def get(self, name: str) -> TaskSpec:
        """Return the Task called ``name`` (or aliased so); suggest close names when unknown.

        Raises:
            AmbiguousTaskError: Two different Tasks claim ``name`` (or the Task it is an alias of).
            UnknownTaskError: No Task has that name or alias.
        """
        target = self.aliases.get(name, name)
        for claimed in dict.fromkeys((name, target)):
            if claimed in self.conflicts:
                sources = "; ".join(self.conflicts[claimed])
                raise AmbiguousTaskError(
                    f"Task name {claimed!r} is ambiguous: it is claimed by {sources}. Rename or remove all but one"
                    " (a folder on LUTE_TASKS_PATH never shadows another Task silently)"
                )
        if name in self.tasks:
            return self.tasks[name]
        if name in self.aliases:
            return self.tasks[self.aliases[name]]
        known = sorted(set(self.tasks) | set(self.aliases))
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        broken = f" ({len(self.failures)} Task module(s) failed to load: see `lute-kernel tasks`.)"
        raise UnknownTaskError(f"unknown Task {name!r}.{hint}" + (broken if self.failures else ""))

    def knows(self, name: str) -> bool:
        """Return True when ``name`` is a Task name or alias (ambiguous ones too)."""
        return name in self.tasks or name in self.aliases or name in self.conflicts


def _origin(spec: TaskSpec) -> Tuple[str, str]:
    """The file a Task class was defined in, and its name there: the same Task, however it was imported."""
    module = sys.modules.get(spec.cls.__module__)
    path = getattr(module, "__file__", None)
    return (str(Path(path).resolve()) if path else spec.cls.__module__, spec.cls.__qualname__)


def _claim(spec: TaskSpec, name: str) -> str:
    how = "" if name == spec.name else f" (an alias of {spec.name})"
    return f"{spec.source}{how}"


def default_tasks_dirs() -> List[Path]:
    """Return the Task folders of ``LUTE_TASKS_PATH`` (colon-separated), in order."""
    return [Path(p) for p in os.environ.get("LUTE_TASKS_PATH", "").split(os.pathsep) if p]


def _package_name(tasks_dir: Path) -> str:
    # One synthetic package per folder, so two folders may both hold a `test.py`.
    return f"{TASKS_PACKAGE}_{zlib.crc32(str(tasks_dir.resolve()).encode()):08x}"


def _ensure_package(tasks_dir: Path) -> str:
    name = _package_name(tasks_dir)
    if name not in sys.modules:
        init = tasks_dir / "__init__.py"
        spec: Optional[importlib.machinery.ModuleSpec]
        if init.exists():
            spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(tasks_dir)])
        else:  # a plain folder of Task modules
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [str(tasks_dir)]
        if spec is None:
            raise ImportError(f"cannot make a package of {tasks_dir}")
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        if spec.loader is not None:
            try:
                spec.loader.exec_module(package)
            except BaseException:  # a half-run __init__ must not serve later imports
                sys.modules.pop(name, None)
                raise
    return name


def import_tasks_module(tasks_dir: Optional[str], module: str) -> ModuleType:
    """Import a Task module: ``module`` is a file stem of ``tasks_dir``, or a dotted module name."""
    if tasks_dir is None:
        return importlib.import_module(module)
    package = _ensure_package(Path(tasks_dir))
    return importlib.import_module(f"{package}.{module}")


def import_task(tasks_dir: Optional[str], module: str, class_name: str) -> type[Task]:
    """Import one Task class (what the worker does with the names the host sends it)."""
    from lute_kernel.task import Task

    cls = getattr(import_tasks_module(tasks_dir, module), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"{module}.{class_name} is not a Task")
    return cls


def _tasks_in(module: ModuleType) -> Iterable[type[Task]]:
    from lute_kernel.task import Task, ThirdPartyTask

    bases = (Task, ThirdPartyTask)
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, Task)
            and value not in bases
            and value.__module__ == module.__name__
            and not value.__name__.startswith("_")
        ):
            yield value


class TaskEntryPoint(NamedTuple):
    """One entry point of the group, as the registry reads it (no ``importlib.metadata`` import).

    ``importlib.metadata.EntryPoint`` has more, and importing that module costs a ``tasks`` listing
    ~15 ms when the cached list answers.
    """

    name: str
    value: str
    group: str = ENTRY_POINT_GROUP


def _entry_points() -> List[TaskEntryPoint]:
    """Return the group's entry points, with the kernel's own Task package first (even without metadata).

    The list is cached (``lute_kernel.task_index``): scanning every installed distribution's
    metadata costs ~20 ms a command otherwise.
    """
    entries = [TaskEntryPoint(name, value) for name, value in cached_entry_points(ENTRY_POINT_GROUP)]
    builtin = TaskEntryPoint("builtin", BUILTIN_TASK_PACKAGE)
    return [builtin, *(e for e in entries if e.value != BUILTIN_TASK_PACKAGE)]


def _register_module(registry: Registry, module: ModuleType, source: str, stem: str, tasks_dir: Optional[str]) -> None:
    from lute_kernel.task import TaskSpec

    for cls in _tasks_in(module):
        registry.add(
            TaskSpec(
                name=cls.__name__,
                cls=cls,
                module=stem,
                source=source,
                # A class's own aliases only: an alias names one Task, and a subclass is another Task.
                aliases=tuple(vars(cls).get("aliases", ())),
                tasks_dir=tasks_dir,
            )
        )


@dataclass
class _Discovery:
    registry: Registry
    timeout_s: float
    folders: Set[Path] = field(default_factory=set)

    def folder(self, tasks_dir: Path) -> None:
        resolved = tasks_dir.resolve()
        if resolved in self.folders:
            return  # e.g. the repo's tasks/ on LUTE_TASKS_PATH and as the built-in package
        self.folders.add(resolved)
        for path in sorted(tasks_dir.glob("*.py")):
            if not path.name.startswith("_"):
                self.module(resolved, path)

    def module(self, tasks_dir: Path, path: Path) -> None:
        """Import one Task module of a folder and register its Tasks (a failure is recorded)."""
        load = functools.partial(import_tasks_module, str(tasks_dir), path.stem)
        module, problem = guarded(load, str(path), self.timeout_s)
        if module is None:  # a broken Task module must not hide the others
            self.registry.failures.append(LoadFailure(str(path), problem))
            return
        _register_module(self.registry, module, str(path), path.stem, str(tasks_dir))

    def entry_point_folders(self, entry: TaskEntryPoint) -> Optional[List[Path]]:
        """Return the folders of an entry point that is a package (None: a plain module, or not found)."""
        name = entry.value.partition(":")[0].strip()
        spec, _ = guarded(functools.partial(importlib.util.find_spec, name), name, self.timeout_s)
        if spec is None or not spec.submodule_search_locations:
            return None
        return [Path(location).resolve() for location in spec.submodule_search_locations]

    def entry_point(self, entry: TaskEntryPoint) -> None:
        name = entry.value.partition(":")[0].strip()
        where = f"entry point {entry.name}"
        spec, problem = guarded(functools.partial(importlib.util.find_spec, name), f"{where} ({name})", self.timeout_s)
        if spec is None:
            if entry.name == "builtin" and not problem:
                return  # the kernel's own Tasks are not installed here: nothing to report
            self.registry.failures.append(
                LoadFailure(where, problem or f"ModuleNotFoundError: No module named {name!r}")
            )
            return
        if spec.submodule_search_locations:  # a package: its Task modules, read like a folder
            for location in spec.submodule_search_locations:
                self.folder(Path(location).resolve())
            return
        module, problem = guarded(functools.partial(importlib.import_module, name), f"{where} ({name})", self.timeout_s)
        if module is None:
            self.registry.failures.append(LoadFailure(where, problem))
            return
        _register_module(self.registry, module, where, module.__name__, None)


def discover(tasks_dirs: Optional[Iterable[Path]] = None, *, entry_points: bool = True) -> Registry:
    """Import every Task module of ``tasks_dirs`` (default: ``LUTE_TASKS_PATH``) and of the entry points."""
    registry = Registry()
    timeout_s, problem = import_timeout()
    if problem:
        registry.failures.append(LoadFailure("environment", problem))
    discovery = _Discovery(registry, timeout_s)
    for tasks_dir in default_tasks_dirs() if tasks_dirs is None else tasks_dirs:
        discovery.folder(Path(tasks_dir))
    if entry_points:
        for entry in _entry_points():
            discovery.entry_point(entry)
    registry.failures.extend(registry.conflict_failures())
    return registry
