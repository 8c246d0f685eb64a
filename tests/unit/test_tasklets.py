"""Host-side tasklets: placeholder filling, function lookup, running in order, built-ins."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Dict

import pytest

from lute_kernel import builtin_tasklets
from lute_kernel.tasklets import Tasklet, fill, lookup, resolve_function, run_tasklets

VALUES: Dict[str, Any] = {
    "n": 3,
    "ratio": 0.5,
    "flag": False,
    "files": ["a.h5", "b.h5"],
    "outdir": "/data/out",
    "lute_config": {"work_dir": "/work", "run": 14, "nested": {"deep": [1, 2]}},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ n }}", 3),
        ("{{n}}", 3),
        ("  {{   ratio }}  ", 0.5),
        ("{{ flag }}", False),
        ("{{ files }}", ["a.h5", "b.h5"]),
        ("{{ lute_config.run }}", 14),
        ("{{ lute_config.nested.deep }}", [1, 2]),
        ("{{ lute_config }}", VALUES["lute_config"]),
    ],
)
def test_a_whole_placeholder_keeps_the_parameter_type(template: str, expected: Any) -> None:
    result = fill(template, VALUES)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ outdir }}/out.txt", "/data/out/out.txt"),
        ("{{ lute_config.work_dir }}/r{{ lute_config.run }}", "/work/r14"),
        ("n={{ n }} flag={{ flag }}", "n=3 flag=False"),
        ("{{ n }}{{ n }}", "33"),
        ("no placeholders", "no placeholders"),
        ("{ n }", "{ n }"),
    ],
)
def test_a_partial_placeholder_gives_a_string(template: str, expected: str) -> None:
    assert fill(template, VALUES) == expected


def test_fill_walks_containers_and_keeps_their_types() -> None:
    assert fill(("{{ n }}", "{{ outdir }}/x", 5), VALUES) == (3, "/data/out/x", 5)
    assert fill(["{{ files }}", None], VALUES) == [["a.h5", "b.h5"], None]
    assert fill({"{{ n }}": "{{ n }}", "k": ["{{ ratio }}"]}, VALUES) == {"{{ n }}": 3, "k": [0.5]}
    assert fill(7, VALUES) == 7


@pytest.mark.parametrize("name", ["missing", "lute_config.nope", "n.x", "lute_config.work_dir.more"])
def test_an_unknown_placeholder_raises_key_error_naming_it(name: str) -> None:
    with pytest.raises(KeyError) as info:
        fill(f"prefix {{{{ {name} }}}}", VALUES)
    assert f"{{{{ {name} }}}} names no parameter" in str(info.value)
    with pytest.raises(KeyError, match="names no parameter"):
        lookup(VALUES, name)


def test_tasklet_describe() -> None:
    tasklet = Tasklet("lute_kernel.builtin_tasklets:make_dirs", ("{{ outdir }}", 2))
    assert tasklet.describe() == "lute_kernel.builtin_tasklets:make_dirs('{{ outdir }}', 2)"


def test_resolve_function_imports_module_colon_function() -> None:
    assert resolve_function("lute_kernel.builtin_tasklets:count_lines") is builtin_tasklets.count_lines


def test_resolve_function_requires_a_colon() -> None:
    with pytest.raises(ValueError, match=r"tasklet 'os\.path\.join' must be 'module:function'"):
        resolve_function("os.path.join")


def test_resolve_function_unknown_module_or_attribute() -> None:
    with pytest.raises(ModuleNotFoundError):
        resolve_function("no_such_module_for_lute_tests:f")
    with pytest.raises(AttributeError):
        resolve_function("lute_kernel.builtin_tasklets:no_such_function")


def test_resolve_function_refuses_a_non_callable() -> None:
    with pytest.raises(TypeError, match="tasklet 'os:sep' is not callable"):
        resolve_function("os:sep")


@pytest.fixture
def probe_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An importable module whose functions record their calls, in order."""
    name = f"lute_tasklet_probe_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "CALLS = []\n"
        "def first(*args, **kwargs):\n"
        "    CALLS.append(('first', args, kwargs))\n"
        "    return {'first': len(CALLS)}\n"
        "def second(*args, **kwargs):\n"
        "    CALLS.append(('second', args, kwargs))\n"
        "    return 'second result'\n"
        "def boom():\n"
        "    raise RuntimeError('tasklet failed on purpose')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    return importlib.import_module(name)


def test_run_tasklets_runs_in_order_with_filled_arguments(probe_module: Any) -> None:
    name = probe_module.__name__
    tasklets = [
        Tasklet(f"{name}:second", ("{{ n }}",), {"where": "{{ lute_config.work_dir }}/x"}),
        Tasklet(f"{name}:first", ("{{ files }}", "lit")),
        Tasklet(f"{name}:second"),
    ]
    results = run_tasklets(tasklets, VALUES)
    assert results == ["second result", {"first": 2}, "second result"]
    assert probe_module.CALLS == [
        ("second", (3,), {"where": "/work/x"}),
        ("first", (["a.h5", "b.h5"], "lit"), {}),
        ("second", (), {}),
    ]


def test_run_tasklets_stops_at_the_first_failure(probe_module: Any) -> None:
    name = probe_module.__name__
    with pytest.raises(RuntimeError, match="tasklet failed on purpose"):
        run_tasklets([Tasklet(f"{name}:first"), Tasklet(f"{name}:boom"), Tasklet(f"{name}:second")], VALUES)
    assert [call[0] for call in probe_module.CALLS] == ["first"]


def test_run_tasklets_with_no_tasklets() -> None:
    assert run_tasklets([], VALUES) == []


def test_make_dirs_makes_parents_and_is_idempotent(tmp_path: Path) -> None:
    a, b = str(tmp_path / "a" / "b"), str(tmp_path / "c")
    assert builtin_tasklets.make_dirs(a, b) == {"made_dirs": f"{a},{b}"}
    assert builtin_tasklets.make_dirs(a, b) == {"made_dirs": f"{a},{b}"}
    assert Path(a).is_dir() and Path(b).is_dir()


def test_concat_files_joins_bytes_in_order(tmp_path: Path) -> None:
    parts = []
    for i, data in enumerate([b"one\n", b"\x00\xffbinary", b"", b"last"]):
        part = tmp_path / f"part{i}"
        part.write_bytes(data)
        parts.append(str(part))
    out = str(tmp_path / "all")
    assert builtin_tasklets.concat_files(out, *parts) == {"concatenated": out}
    assert Path(out).read_bytes() == b"one\n\x00\xffbinarylast"


def test_count_lines_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("x\ny\nz\n")
    assert builtin_tasklets.count_lines(str(path)) == {"lines[out.txt]": 3}
    path.write_text("")
    assert builtin_tasklets.count_lines(str(path)) == {"lines[out.txt]": 0}


def test_list_files_sorted_and_filtered(tmp_path: Path) -> None:
    for name in ["b.h5", "a.h5", "c.txt"]:
        (tmp_path / name).write_text("")
    assert builtin_tasklets.list_files(str(tmp_path), "*.h5") == [str(tmp_path / "a.h5"), str(tmp_path / "b.h5")]
    assert builtin_tasklets.list_files(str(tmp_path)) == [str(tmp_path / n) for n in ["a.h5", "b.h5", "c.txt"]]


def test_builtin_tasklets_through_run_tasklets(tmp_path: Path) -> None:
    values = {"outdir": str(tmp_path / "made")}
    results = run_tasklets(
        [
            Tasklet("lute_kernel.builtin_tasklets:make_dirs", ("{{ outdir }}",)),
            Tasklet("lute_kernel.builtin_tasklets:list_files", ("{{ outdir }}",)),
        ],
        values,
    )
    assert results == [{"made_dirs": str(tmp_path / "made")}, []]
