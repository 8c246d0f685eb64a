"""Task discovery and lookup (lute_kernel.registry)."""

from __future__ import annotations

import importlib.util
import textwrap
import types
import uuid
from pathlib import Path
from typing import Any, Dict, List

import pytest

from lute_kernel import registry as registry_module
from lute_kernel.errors import EXIT_BAD_INPUT, InputError, UnknownTaskError
from lute_kernel.registry import (
    BUILTIN_TASK_PACKAGE,
    ENTRY_POINT_GROUP,
    AmbiguousTaskError,
    LoadFailure,
    default_tasks_dirs,
    discover,
    import_task,
)
from lute_kernel.task import Task, ThirdPartyTask

REPO = Path(__file__).resolve().parents[2]
TEST_TASKS = REPO / "tests" / "tasks"

REPO_TASKS = {
    "Test",
    "TestBinary",
    "TestBinaryErr",
    "TestSocket",
    "TestWriteOutput",
    "TestReadOutput",
    "SmallDataPsana2",
    "TestMultiNodeCommunication",
    "FindPeaksSFX",
    "FindPeaksPyAlgos",
    "IndexCrystFEL",
    "ConcatenateStreamFiles",
    "MergePartialator",
    "CompareHKL",
    "ManipulateHKL",
    "DimpleSolve",
    "RunSHELXC",
    "SimulateStills",
    "IndexCCTBXXFEL",
    "MergeCCTBXXFEL",
    "SubmitSMD",
    "AnalyzeSmallDataXSS",
    "AnalyzeSmallDataXAS",
    "AnalyzeSmallDataXES",
    "OptimizeAgBhGeometryExhaustive",
    "BayFAI",
}
REPO_ALIASES = {
    "Tester": "Test",
    "BinaryTester": "TestBinary",
    "BinaryErrTester": "TestBinaryErr",
    "SocketTester": "TestSocket",
    "WriteTester": "TestWriteOutput",
    "ReadTester": "TestReadOutput",
    "MultiNodeCommunicationTester": "TestMultiNodeCommunication",
    "PeakFinderSFX": "FindPeaksSFX",
    "PeakFinderPyAlgos": "FindPeaksPyAlgos",
    "CrystFELIndexer": "IndexCrystFEL",
    "StreamFileConcatenator": "ConcatenateStreamFiles",
    "PartialatorMerger": "MergePartialator",
    "HKLComparer": "CompareHKL",
    "HKLManipulator": "ManipulateHKL",
    "DimpleSolver": "DimpleSolve",
    "SHELXCRunner": "RunSHELXC",
    "CCTBXIndexer": "IndexCCTBXXFEL",
    "CCTBXMerger": "MergeCCTBXXFEL",
    "SmallDataProducer": "SubmitSMD",
    "SmallDataProducer2": "SubmitSMD",
    "SmallDataXSSAnalyzer": "AnalyzeSmallDataXSS",
    "SmallDataXASAnalyzer": "AnalyzeSmallDataXAS",
    "SmallDataXESAnalyzer": "AnalyzeSmallDataXES",
    "AgBhGeometryOptimizer": "OptimizeAgBhGeometryExhaustive",
    "BayFAIOptimizer": "BayFAI",
    "BayFAIOptimizer2": "BayFAI",
}

ALPHA = """\
from lute_kernel.parameters import TaskParameters, ThirdPartyParameters, param
from lute_kernel.task import Task, ThirdPartyTask


class FindPeaks(Task):
    aliases = ("PeakFinder", "FindPeaksPyAlgos")

    def run(self):
        self.result.summary = "ok"


class IndexCrystals(ThirdPartyTask):
    class Parameters(ThirdPartyParameters):
        executable: str = "indexamajig"


class _HiddenTask(Task):
    pass


NOT_A_TASK = 3
"""

BETA = """\
from .alpha import FindPeaks  # re-exported: must stay registered under module alpha


class MergeFrames(FindPeaks):
    pass
"""


def write_tasks(folder: Path, files: Dict[str, str], *, package: bool) -> Path:
    folder.mkdir(parents=True)
    if package:
        (folder / "__init__.py").write_text('"""Task package."""\n')
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


@pytest.mark.parametrize("package", [True, False], ids=["with-init", "plain-folder"])
def test_discover_registers_every_task_class_of_a_folder(tmp_path: Path, package: bool) -> None:
    folder = write_tasks(
        tmp_path / "tasks",
        {"alpha.py": ALPHA, "beta.py": BETA, "_private.py": "raise RuntimeError('never imported')\n"},
        package=package,
    )
    registry = discover([folder], entry_points=False)

    assert sorted(registry.tasks) == ["FindPeaks", "IndexCrystals", "MergeFrames"]
    assert registry.aliases == {"PeakFinder": "FindPeaks", "FindPeaksPyAlgos": "FindPeaks"}
    assert registry.failures == []
    peaks = registry.tasks["FindPeaks"]
    assert (peaks.module, peaks.source, peaks.tasks_dir) == ("alpha", str(folder / "alpha.py"), str(folder.resolve()))
    assert peaks.aliases == ("PeakFinder", "FindPeaksPyAlgos")
    assert registry.tasks["MergeFrames"].module == "beta"
    assert issubclass(registry.tasks["IndexCrystals"].cls, ThirdPartyTask)


def test_lookup_by_name_and_alias(tmp_path: Path) -> None:
    registry = discover([write_tasks(tmp_path / "t", {"alpha.py": ALPHA}, package=False)], entry_points=False)
    assert registry.get("FindPeaks") is registry.get("PeakFinder") is registry.get("FindPeaksPyAlgos")
    assert registry.knows("PeakFinder") and registry.knows("FindPeaks")
    assert not registry.knows("findpeaks")


def test_unknown_task_suggests_close_names(tmp_path: Path) -> None:
    registry = discover([write_tasks(tmp_path / "t", {"alpha.py": ALPHA}, package=False)], entry_points=False)
    with pytest.raises(UnknownTaskError) as info:
        registry.get("FindPeak")
    assert str(info.value) == "unknown Task 'FindPeak'. Did you mean FindPeaks, FindPeaksPyAlgos?"
    assert isinstance(info.value, InputError) and info.value.exit_code == EXIT_BAD_INPUT


def test_unknown_task_without_close_names(tmp_path: Path) -> None:
    registry = discover([write_tasks(tmp_path / "t", {"alpha.py": ALPHA}, package=False)], entry_points=False)
    with pytest.raises(UnknownTaskError) as info:
        registry.get("Zzz")
    assert str(info.value) == "unknown Task 'Zzz'."


def test_a_broken_module_is_recorded_and_hides_nothing(tmp_path: Path) -> None:
    folder = write_tasks(
        tmp_path / "t",
        {
            "alpha.py": ALPHA,
            "broken.py": "import no_such_dependency_for_lute_tests\n",
            "crash.py": "raise RuntimeError('boom at import')\n",
            "syntax.py": "def oops(:\n",
        },
        package=False,
    )
    registry = discover([folder], entry_points=False)

    assert sorted(registry.tasks) == ["FindPeaks", "IndexCrystals"]
    by_source = {Path(f.source).name: f.error for f in registry.failures}
    assert sorted(by_source) == ["broken.py", "crash.py", "syntax.py"]
    assert by_source["broken.py"] == "ModuleNotFoundError: No module named 'no_such_dependency_for_lute_tests'"
    assert by_source["crash.py"] == "RuntimeError: boom at import"
    assert by_source["syntax.py"].startswith("SyntaxError: ")
    assert LoadFailure(str(folder / "crash.py"), "RuntimeError: boom at import") in registry.failures
    with pytest.raises(UnknownTaskError) as info:
        registry.get("Crash")
    assert str(info.value).endswith("(3 Task module(s) failed to load: see `lute-kernel tasks`.)")


def test_two_folders_may_both_hold_test_py(tmp_path: Path) -> None:
    one = write_tasks(
        tmp_path / "one", {"test.py": "from lute_kernel.task import Task\nclass OneTask(Task): pass\n"}, package=False
    )
    two = write_tasks(
        tmp_path / "two", {"test.py": "from lute_kernel.task import Task\nclass TwoTask(Task): pass\n"}, package=True
    )
    registry = discover([one, two], entry_points=False)

    assert sorted(registry.tasks) == ["OneTask", "TwoTask"]
    first, second = registry.tasks["OneTask"], registry.tasks["TwoTask"]
    assert first.module == second.module == "test"
    assert first.tasks_dir != second.tasks_dir
    assert first.cls.__module__ != second.cls.__module__


def test_a_name_two_tasks_claim_is_a_conflict_never_a_silent_choice(tmp_path: Path) -> None:
    text = "from lute_kernel.task import Task\nclass Same(Task):\n    aliases = ('SameAlias',)\n    origin = '{}'\n"
    text += "class Only{}(Task):\n    pass\n"
    one = write_tasks(tmp_path / "one", {"m.py": text.format("one", "One")}, package=False)
    two = write_tasks(tmp_path / "two", {"m.py": text.format("two", "Two")}, package=False)
    for order in ([one, two], [two, one]):
        registry = discover(order, entry_points=False)
        assert set(registry.tasks) == {"OnlyOne", "OnlyTwo"}  # the rest of both modules is unaffected
        assert registry.conflicts == {
            "Same": [str(order[0] / "m.py"), str(order[1] / "m.py")],
            "SameAlias": [f"{order[0] / 'm.py'} (an alias of Same)", f"{order[1] / 'm.py'} (an alias of Same)"],
        }
        for name in ("Same", "SameAlias"):
            with pytest.raises(AmbiguousTaskError) as info:
                registry.get(name)
            assert info.value.exit_code == EXIT_BAD_INPUT
            assert str(one / "m.py") in str(info.value) and str(two / "m.py") in str(info.value)
            assert registry.knows(name)
        assert [f.source for f in registry.failures] == ["Task name 'Same'", "Task name 'SameAlias'"]
        assert "claimed 2 times" in registry.failures[0].error


def test_an_alias_that_is_another_tasks_name_is_a_conflict(tmp_path: Path) -> None:
    folder = write_tasks(
        tmp_path / "t",
        {
            "a.py": "from lute_kernel.task import Task\nclass Peaks(Task):\n    aliases = ('Index',)\n",
            "b.py": "from lute_kernel.task import Task\nclass Index(Task):\n    pass\n",
        },
        package=False,
    )
    registry = discover([folder], entry_points=False)
    assert registry.conflicts == {"Index": [f"{folder / 'a.py'} (an alias of Peaks)", str(folder / "b.py")]}
    assert registry.get("Peaks").name == "Peaks"  # its own name is still its own
    with pytest.raises(AmbiguousTaskError, match="'Index' is ambiguous"):
        registry.get("Index")


def test_a_subclass_does_not_inherit_its_parents_aliases(tmp_path: Path) -> None:
    registry = discover(
        [write_tasks(tmp_path / "t", {"alpha.py": ALPHA, "beta.py": BETA}, package=False)], entry_points=False
    )
    assert registry.tasks["MergeFrames"].aliases == () and registry.conflicts == {}


@pytest.mark.parametrize("package", [True, False], ids=["with-init", "plain-folder"])
def test_import_task_round_trip_gives_the_registered_class(tmp_path: Path, package: bool) -> None:
    folder = write_tasks(tmp_path / "t", {"alpha.py": ALPHA, "beta.py": BETA}, package=package)
    registry = discover([folder], entry_points=False)
    for name in ("FindPeaks", "MergeFrames", "IndexCrystals"):
        spec = registry.get(name)
        assert import_task(spec.tasks_dir, spec.module, spec.cls.__name__) is spec.cls


def test_import_task_refuses_what_is_not_a_task(tmp_path: Path) -> None:
    folder = write_tasks(tmp_path / "t", {"alpha.py": ALPHA}, package=False)
    with pytest.raises(TypeError, match=r"alpha\.NOT_A_TASK is not a Task"):
        import_task(str(folder), "alpha", "NOT_A_TASK")
    with pytest.raises(AttributeError):
        import_task(str(folder), "alpha", "Missing")
    assert import_task(None, "lute_kernel.task", "Task") is Task


def test_the_repo_tasks_and_their_upstream_aliases() -> None:
    registry = discover([REPO / "tasks"], entry_points=False)
    assert set(registry.tasks) == REPO_TASKS
    assert registry.aliases == REPO_ALIASES
    assert registry.failures == []
    for alias, name in REPO_ALIASES.items():
        assert registry.get(alias).name == name
    for spec in registry.tasks.values():
        assert import_task(spec.tasks_dir, spec.module, spec.name) is spec.cls


REAL_ENTRY_POINTS = registry_module._entry_points


def builtin_only() -> List[Any]:
    return [entry for entry in REAL_ENTRY_POINTS() if entry.value == BUILTIN_TASK_PACKAGE]


def test_default_discovery_reads_lute_tasks_path_then_the_builtin_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(registry_module, "_entry_points", builtin_only)
    monkeypatch.setenv("LUTE_TASKS_PATH", f"{TEST_TASKS}::{tmp_path / 'missing'}")
    assert default_tasks_dirs() == [TEST_TASKS, tmp_path / "missing"]
    registry = discover()
    assert set(registry.tasks) == REPO_TASKS | {
        "FaultSleep",
        "FaultKillSelf",
        "FaultExit",
        "FaultBigMessage",
        "FaultEscape",
        "FaultOutput",
        "FaultSegfault",
        "FaultMemory",
        "WithTasklets",
        "ProbeEnvironment",
        "FigureForms",
        "MpiRankCrash",
        "MpiReport",
        "IpcStrangerTarget",
    }
    assert registry.failures == []
    assert registry.get("Test").source == str(REPO / "tasks" / "test.py")  # the checkout's own files
    assert registry.get("Test").tasks_dir == str((REPO / "tasks").resolve())
    monkeypatch.delenv("LUTE_TASKS_PATH")
    assert default_tasks_dirs() == []
    assert set(discover().tasks) == REPO_TASKS


def test_the_builtin_package_is_an_entry_point_of_the_group() -> None:
    entries = registry_module._entry_points()
    assert entries[0].value == BUILTIN_TASK_PACKAGE and entries[0].group == ENTRY_POINT_GROUP
    assert [e.value for e in entries].count(BUILTIN_TASK_PACKAGE) == 1
    spec = importlib.util.find_spec(BUILTIN_TASK_PACKAGE)
    assert spec is not None and spec.submodule_search_locations is not None
    assert [Path(p).resolve() for p in spec.submodule_search_locations] == [(REPO / "tasks").resolve()]


def test_a_folder_found_by_path_and_by_entry_point_registers_each_task_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "_entry_points", builtin_only)
    monkeypatch.setenv("LUTE_TASKS_PATH", str(REPO / "tasks"))
    registry = discover()
    assert set(registry.tasks) == REPO_TASKS and registry.conflicts == {} and registry.failures == []


def test_a_lute_tasks_path_module_shadowing_a_builtin_is_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = write_tasks(
        tmp_path / "mine",
        {"test.py": "from lute_kernel.task import Task\nclass Test(Task):\n    pass\n"},
        package=False,
    )
    monkeypatch.setattr(registry_module, "_entry_points", builtin_only)
    monkeypatch.setenv("LUTE_TASKS_PATH", str(folder))
    registry = discover()
    assert registry.conflicts == {"Test": [str(folder / "test.py"), str(REPO / "tasks" / "test.py")]}
    for name in ("Test", "Tester"):  # the built-in's alias names the same ambiguous Task
        with pytest.raises(AmbiguousTaskError) as info:
            registry.get(name)
        assert str(folder / "test.py") in str(info.value) and str(REPO / "tasks" / "test.py") in str(info.value)
    assert registry.get("TestSocket").name == "TestSocket"
    assert registry.failures == registry.conflict_failures() and len(registry.failures) == 1


@pytest.fixture
def entry_point_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"lute_ext_tasks_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "from lute_kernel.task import Task\n"
        "class ExternalTask(Task):\n"
        "    aliases = ('ExtAlias',)\n"
        "    def run(self):\n"
        "        pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def fake_entry_points(*pairs: Any) -> List[Any]:
    return [types.SimpleNamespace(name=name, value=value, group="lute_kernel.tasks") for name, value in pairs]


def test_entry_point_tasks_are_registered(monkeypatch: pytest.MonkeyPatch, entry_point_module: str) -> None:
    monkeypatch.setattr(
        registry_module,
        "_entry_points",
        lambda: fake_entry_points(("ext", f"{entry_point_module}:anything"), ("bad", "no_such_module_lute_ep:x")),
    )
    registry = discover([], entry_points=True)

    spec = registry.get("ExtAlias")
    assert (spec.name, spec.module, spec.source, spec.tasks_dir) == (
        "ExternalTask",
        entry_point_module,
        "entry point ext",
        None,
    )
    assert import_task(spec.tasks_dir, spec.module, spec.name) is spec.cls
    assert registry.failures == [
        LoadFailure("entry point bad", "ModuleNotFoundError: No module named 'no_such_module_lute_ep'")
    ]


def test_entry_points_can_be_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail() -> List[Any]:
        raise AssertionError("entry points must not be read")

    monkeypatch.setattr(registry_module, "_entry_points", fail)
    assert discover([], entry_points=False).tasks == {}


def test_real_entry_point_lookup_returns_a_list() -> None:
    found = registry_module._entry_points()
    assert isinstance(found, list)
    assert all(entry.group == registry_module.ENTRY_POINT_GROUP for entry in found)


def test_a_cached_entry_point_list_needs_no_importlib_metadata(tmp_path: Path) -> None:
    """A `tasks` listing answered from the cache does not import importlib.metadata (~15 ms)."""
    import os
    import subprocess
    import sys

    code = (
        "import sys; from lute_kernel import registry;"
        " found = registry._entry_points();"
        " print(found[0].name, found[0].value, found[0].group, 'importlib.metadata' in sys.modules)"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    (tmp_path / "probe").mkdir()
    script = tmp_path / "probe" / "probe.py"  # sys.path[0] is its folder: settled before the first run
    script.write_text(code)
    old = os.stat(script.parent).st_mtime_ns - 10**10
    os.utime(script.parent, ns=(old, old))
    runs = [subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert runs[1].stdout.split() == ["builtin", BUILTIN_TASK_PACKAGE, ENTRY_POINT_GROUP, "False"]
