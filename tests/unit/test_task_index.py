"""The source index of Tasks: it answers as a full discovery would, imports only what is asked for, and
notices new, removed and edited Task modules."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path
from typing import List

import pytest

from lute_kernel import task_index
from lute_kernel.registry import discover
from lute_kernel.task_index import build_index, classes_in_source
from lute_kernel.task_lookup import registry_for

REPO = Path(__file__).resolve().parents[2]
TEST_TASKS = REPO / "tests" / "tasks"


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LUTE_TASKS_PATH", raising=False)


def test_classes_are_read_from_the_source_without_running_it() -> None:
    facts = classes_in_source(
        textwrap.dedent(
            """
            raise SystemExit("never run")
            class A(Task):
                aliases = ("Alpha", "A1")
            class B(mod.A):
                aliases: tuple = ["Beta"]
            class C(A):
                aliases = tuple(x for x in "no")
            """
        )
    )
    assert [(f.name, f.bases, f.aliases, f.aliases_known) for f in facts] == [
        ("A", ("Task",), ("Alpha", "A1"), True),
        ("B", ("A",), ("Beta",), True),
        ("C", ("A",), (), False),
    ]


def test_the_index_names_every_shipped_task_as_discovery_does() -> None:
    folders = [REPO / "tasks", TEST_TASKS]
    index = build_index(folders)
    found = discover(folders, entry_points=False)
    assert {e.name for e in index.entries} == set(found.tasks)
    for entry in index.entries:
        assert set(entry.aliases) == set(found.tasks[entry.name].aliases), entry.name


def test_run_imports_only_the_module_of_its_task() -> None:
    before = set(sys.modules)
    registry = registry_for(["FaultExit"], [TEST_TASKS], entry_points=False)
    assert registry.get("FaultExit").cls.__name__ == "FaultExit"
    new = {m for m in set(sys.modules) - before if m.startswith("lute_tasks_")}
    assert all(m.endswith(".faults") or "." not in m for m in new), new


def test_every_name_and_alias_gives_what_a_full_discovery_gives() -> None:
    folders = [REPO / "tasks", TEST_TASKS]
    full = discover(folders, entry_points=False)
    for name in [*full.tasks, *full.aliases]:
        assert registry_for([name], folders, entry_points=False).get(name).cls is full.get(name).cls, name


def _write_task(folder: Path, module: str, name: str, alias: str = "") -> Path:
    path = folder / f"{module}.py"
    aliases = f"    aliases = ({alias!r},)\n" if alias else ""
    path.write_text(f"from lute_kernel.task import Task\n\n\nclass {name}(Task):\n{aliases}    image = 'base'\n")
    return path


def _age(path: Path) -> Path:
    """Make a module look written 10 s ago: only files quiet for a while are cached (`lute_kernel.file_stamps`)."""
    quiet = path.stat().st_mtime_ns - 10**10
    os.utime(path, ns=(quiet, quiet))
    return path


def test_a_new_an_edited_and_a_removed_module_are_noticed(tmp_path: Path) -> None:
    folder = tmp_path / "my_tasks"
    folder.mkdir()
    first = _write_task(folder, "one", "FirstTask")
    assert {e.name for e in build_index([folder]).entries} == {"FirstTask"}
    _write_task(folder, "two", "SecondTask", alias="Second")
    assert {e.name for e in build_index([folder]).entries} == {"FirstTask", "SecondTask"}
    _write_task(folder, "one", "RenamedTask")
    stat = first.stat()
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # an edit within the same tick
    assert {e.name for e in build_index([folder]).entries} == {"RenamedTask", "SecondTask"}
    (folder / "two.py").unlink()
    assert {e.name for e in build_index([folder]).entries} == {"RenamedTask"}
    assert registry_for(["RenamedTask"], [folder], entry_points=False).knows("RenamedTask")


def test_a_name_the_index_cannot_place_falls_back_to_full_discovery(tmp_path: Path) -> None:
    folder = tmp_path / "dynamic"
    folder.mkdir()
    (folder / "made.py").write_text(
        "from lute_kernel.task import Task\nMade = type('Made', (Task,), {'__module__': __name__})\n"
    )
    assert build_index([folder]).candidates("Made") == []
    assert registry_for(["Made"], [folder], entry_points=False).get("Made").name == "Made"


def test_a_broken_module_is_not_indexed_but_reported_by_discovery(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "bad.py").write_text("class (:\n")
    _write_task(folder, "good", "GoodTask")
    index = build_index([folder])
    assert [e.name for e in index.entries] == ["GoodTask"] and index.broken == [str(folder / "bad.py")]
    assert registry_for(["GoodTask"], [folder], entry_points=False).get("GoodTask").name == "GoodTask"


def test_a_warm_process_reads_the_cache_file_once_until_another_process_replaces_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "warm"
    folder.mkdir()
    _age(_write_task(folder, "one", "FirstTask"))
    build_index([folder])  # parses the module and writes the cache
    reads: list = []
    real_loads = task_index.json.loads
    monkeypatch.setattr(task_index.json, "loads", lambda text: reads.append(1) or real_loads(text))
    for _ in range(3):
        assert {e.name for e in build_index([folder]).entries} == {"FirstTask"}
    assert reads == []  # the file this process wrote is the file it remembers
    cache_file = tmp_path / "cache" / "lute-kernel" / "task-index.json"
    data = real_loads(cache_file.read_text())
    replaced = cache_file.with_name("other-process.json")
    replaced.write_text(task_index.json.dumps(data))
    os.replace(replaced, cache_file)  # another process wrote the cache meanwhile
    assert {e.name for e in build_index([folder]).entries} == {"FirstTask"}
    assert reads == [1]
    _write_task(folder, "two", "SecondTask")  # a new module is still noticed at once
    assert {e.name for e in build_index([folder]).entries} == {"FirstTask", "SecondTask"}


def test_entries_of_files_that_are_gone_leave_the_cache_when_it_is_written(tmp_path: Path) -> None:
    old, new = tmp_path / "old_checkout", tmp_path / "new_checkout"
    for folder in (old, new):
        folder.mkdir()
        _age(_write_task(folder, "one", f"{folder.name.title().replace('_', '')}Task"))
    build_index([old])
    cache_file = tmp_path / "cache" / "lute-kernel" / "task-index.json"
    assert str(old / "one.py") in task_index.json.loads(cache_file.read_text())["files"]
    (old / "one.py").unlink()
    old.rmdir()
    assert [e.name for e in build_index([new]).entries] == ["NewCheckoutTask"]
    files = task_index.json.loads(cache_file.read_text())["files"]
    assert list(files) == [str((new / "one.py").resolve())]


def test_entry_points_are_kept_per_sys_path_so_two_ways_of_starting_do_not_rescan(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from importlib import metadata

    scans: List[int] = []
    real = metadata.entry_points
    monkeypatch.setattr(metadata, "entry_points", lambda *a, **k: (scans.append(1), real(*a, **k))[1])
    first, second = [str(tmp_path / "a"), *sys.path], [str(tmp_path / "b"), *sys.path]
    for path in (first, second, first, second, first):
        monkeypatch.setattr(sys, "path", path)
        task_index._read.clear()  # as a new process would: read from the file
        assert task_index.cached_entry_points("lute_kernel.tasks") == task_index.cached_entry_points(
            "lute_kernel.tasks"
        )
    assert len(scans) == 2  # once per sys.path, then from the cache
    for n in range(task_index.ENTRY_POINT_VARIANTS + 1):
        monkeypatch.setattr(sys, "path", [str(tmp_path / f"v{n}"), *sys.path[1:]])
        task_index.cached_entry_points("lute_kernel.tasks")
    cache = task_index._Cache()
    assert len(cache.entry_points["lute_kernel.tasks"]) == task_index.ENTRY_POINT_VARIANTS
