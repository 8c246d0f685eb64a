"""Find Tasks: the repo's ``tasks/`` folder(s) by path, installed packages by entry point.

Owns discovery and name lookup (class names and upstream aliases). There is no list of Tasks
anywhere: every ``Task`` subclass defined in a discovered module is registered under its class
name. Modules that fail to import are recorded, not fatal, so one broken Task module does not
hide the others. The worker uses :func:`import_task` to re-import one Task in its own process.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import zlib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Dict, Iterable, List, Optional

from lute_kernel.errors import UnknownTaskError
from lute_kernel.task import Task, TaskSpec, ThirdPartyTask

ENTRY_POINT_GROUP = "lute_kernel.tasks"
TASKS_PACKAGE = "lute_tasks"
_BASES = (Task, ThirdPartyTask)


@dataclass(frozen=True)
class LoadFailure:
    """A Task module that could not be imported, and why."""

    source: str
    error: str


@dataclass
class Registry:
    """Every Task found, by name, with its aliases and the modules that failed to load."""

    tasks: Dict[str, TaskSpec] = field(default_factory=dict)
    aliases: Dict[str, str] = field(default_factory=dict)
    failures: List[LoadFailure] = field(default_factory=list)

    def add(self, spec: TaskSpec) -> None:
        """Register a Task under its name and aliases (first registration wins)."""
        self.tasks.setdefault(spec.name, spec)
        for alias in spec.aliases:
            self.aliases.setdefault(alias, spec.name)

    def get(self, name: str) -> TaskSpec:
        """Return the Task called ``name`` (or aliased so); suggest close names when unknown."""
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
        """Return True when ``name`` is a Task name or alias."""
        return name in self.tasks or name in self.aliases


def default_tasks_dirs() -> List[Path]:
    """Return the Task folders: ``LUTE_TASKS_PATH`` (colon-separated) first, then the repo's ``tasks/``."""
    dirs = [Path(p) for p in os.environ.get("LUTE_TASKS_PATH", "").split(os.pathsep) if p]
    repo_tasks = Path(__file__).resolve().parent.parent / "tasks"
    if repo_tasks.is_dir():
        dirs.append(repo_tasks)
    return dirs


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
            spec.loader.exec_module(package)
    return name


def import_tasks_module(tasks_dir: Optional[str], module: str) -> ModuleType:
    """Import a Task module: ``module`` is a file stem of ``tasks_dir``, or a dotted module name."""
    if tasks_dir is None:
        return importlib.import_module(module)
    package = _ensure_package(Path(tasks_dir))
    return importlib.import_module(f"{package}.{module}")


def import_task(tasks_dir: Optional[str], module: str, class_name: str) -> type[Task]:
    """Import one Task class (what the worker does with the names the host sends it)."""
    cls = getattr(import_tasks_module(tasks_dir, module), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"{module}.{class_name} is not a Task")
    return cls


def _tasks_in(module: ModuleType) -> Iterable[type[Task]]:
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, Task)
            and value not in _BASES
            and value.__module__ == module.__name__
            and not value.__name__.startswith("_")
        ):
            yield value


def _entry_points() -> List[metadata.EntryPoint]:
    found = metadata.entry_points()
    if hasattr(found, "select"):
        return list(found.select(group=ENTRY_POINT_GROUP))
    return list(found.get(ENTRY_POINT_GROUP, []))  # Python 3.9


def _register_module(registry: Registry, module: ModuleType, source: str, stem: str, tasks_dir: Optional[str]) -> None:
    for cls in _tasks_in(module):
        registry.add(
            TaskSpec(
                name=cls.__name__,
                cls=cls,
                module=stem,
                source=source,
                aliases=tuple(cls.aliases),
                tasks_dir=tasks_dir,
            )
        )


def discover(tasks_dirs: Optional[Iterable[Path]] = None, *, entry_points: bool = True) -> Registry:
    """Import every Task module in ``tasks_dirs`` and from entry points; return the registry."""
    registry = Registry()
    for tasks_dir in default_tasks_dirs() if tasks_dirs is None else tasks_dirs:
        for path in sorted(Path(tasks_dir).glob("*.py")):
            if path.name.startswith("_"):
                continue
            try:
                module = import_tasks_module(str(tasks_dir), path.stem)
            except Exception as exc:  # a broken Task module must not hide the others
                registry.failures.append(LoadFailure(str(path), f"{type(exc).__name__}: {exc}"))
                continue
            _register_module(registry, module, str(path), path.stem, str(Path(tasks_dir).resolve()))
    if entry_points:
        for entry in _entry_points():
            try:
                module = importlib.import_module(entry.value.partition(":")[0])
            except Exception as exc:
                registry.failures.append(LoadFailure(f"entry point {entry.name}", f"{type(exc).__name__}: {exc}"))
                continue
            _register_module(registry, module, f"entry point {entry.name}", module.__name__, None)
    return registry
