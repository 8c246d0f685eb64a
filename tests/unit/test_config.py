"""Configuration loading and ``{{ ... }}`` substitution (lute_kernel.config)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Dict, List

import pytest

from lute_kernel.config import LoadedConfig, load_config, resolve_document
from lute_kernel.errors import ConfigError

UPSTREAM = Path(__file__).parents[3] / "shared/upstream-configs"
needs_upstream = pytest.mark.skipif(not UPSTREAM.is_dir(), reason="no shared/upstream-configs")

HEADER = """\
%YAML 1.3
---
title: "Test"
experiment: "TestYAMLSubs"
run: 12
date: "2024/05/01"
lute_version: 0.1
task_timeout: 600
work_dir: "/work"
...
"""

VAR_SUBS = (
    HEADER
    + """\
---
OtherTask:
  useful_other_var: "USE ME!"

NonExistentTask:
  test_sub: "/path/to/{{ experiment }}/file_r{{ run:04d }}.input"
  test_env_sub: "/path/to/{{ $EXPERIMENT }}/file.input"
  test_nested:
    a: "outfile_{{ run }}_one.out"
    b:
      c: "outfile_{{ run }}_two.out"
      d: "{{ OtherTask.useful_other_var }}"
  test_fmt: "{{ run:04d }}"
  test_env_fmt: "{{ $RUN:04d }}"
...
"""
)

VAR_SUBS_EXPECTED = {
    "OtherTask": {"useful_other_var": "USE ME!"},
    "NonExistentTask": {
        "test_sub": "/path/to/TestYAMLSubs/file_r0012.input",
        "test_env_sub": "/path/to/envexp/file.input",
        "test_nested": {
            "a": "outfile_12_one.out",
            "b": {"c": "outfile_12_two.out", "d": "USE ME!"},
        },
        "test_fmt": "0012",
        "test_env_fmt": "0012",
    },
}

ENV = {"EXPERIMENT": "envexp", "RUN": "12"}


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, sections: str, env: Dict[str, str] = ENV) -> LoadedConfig:
    return load_config(write(tmp_path, HEADER + "---\n" + textwrap.dedent(sections)), env=env)


def sub(sections: Dict[str, Any], header: Dict[str, Any] | None = None, **env: str) -> Any:
    base = {"run": 12, "experiment": "exp", "work_dir": "/w"}
    return resolve_document(base if header is None else header, sections, env)["sections"]


def error_of(config: LoadedConfig, section: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config.section(section)
    return info.value


# --- the upstream test_var_subs.yaml semantics --------------------------------------------------


def test_var_subs_inline(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VAR_SUBS), env=ENV)
    assert config.resolved()["sections"] == VAR_SUBS_EXPECTED
    assert config.errors() == []


@needs_upstream
def test_var_subs_upstream_file() -> None:
    config = load_config(UPSTREAM / "test_var_subs.yaml", env=ENV)
    assert config.section("NonExistentTask") == VAR_SUBS_EXPECTED["NonExistentTask"]
    assert config.header()["experiment"] == "TestYAMLSubs"


# --- substitution semantics on plain dicts ------------------------------------------------------


def test_whole_substitution_keeps_type() -> None:
    sections = {
        "Src": {"i": 7, "f": 0.5, "b": True, "n": None, "d": {"k": [1, 2]}, "l": ["x", 3]},
        "T": {
            "run": "{{ run }}",
            "i": "{{ Src.i }}",
            "f": "{{ Src.f }}",
            "b": "{{ Src.b }}",
            "n": "{{ Src.n }}",
            "d": "{{ Src.d }}",
            "l": "{{ Src.l }}",
            "env": "{{ $RUN }}",
        },
    }
    assert sub(sections, RUN="12")["T"] == {
        "run": 12,
        "i": 7,
        "f": 0.5,
        "b": True,
        "n": None,
        "d": {"k": [1, 2]},
        "l": ["x", 3],
        "env": "12",
    }


def test_whole_substitution_copies_containers() -> None:
    result = sub({"Src": {"d": {"k": 1}}, "T": {"d": "{{ Src.d }}"}})
    result["T"]["d"]["k"] = 2
    assert result["Src"]["d"] == {"k": 1}


def test_partial_substitution_gives_str() -> None:
    sections = {"T": {"flag": True, "a": "r{{ run }}", "b": "{{ flag }}!", "c": " {{ run }}"}}
    assert sub(sections)["T"] == {"flag": True, "a": "r12", "b": "True!", "c": " 12"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ run:04d }}", "0012"),
        ("{{run:04d}}", "0012"),
        ("{{  run :  04d  }}", "0012"),
        ("{{ run:x }}", "c"),
        ("{{ run:.2f }}", "12.00"),
        ("{{ experiment:>5 }}", "  exp"),
        ("{{ $RUN:04d }}", "0012"),
        ("{{ $RUN:x }}", "c"),
        ("{{ $RUN:.1f }}", "12.0"),
        ("{{ $RUN:.0% }}", "1200%"),
        ("{{ $RUN:>4 }}", "  12"),
        ("r{{ $RUN:03d }}_{{ run:02d }}", "r012_12"),
    ],
)
def test_format_specs(text: str, expected: str) -> None:
    assert sub({"T": {"v": text}}, RUN="12")["T"]["v"] == expected


def test_header_env_string_meets_numeric_spec() -> None:
    # upstream test.yaml: run: "{{ $RUN }}" in the header, then "{{ run:04d }}" in a section.
    header = {"run": "{{ $RUN }}", "work_dir": "/w"}
    assert sub({"T": {"v": "{{ run:04d }}", "w": "{{ run }}"}}, header, RUN="7")["T"] == {
        "v": "0007",
        "w": "7",
    }


def test_name_lookup_order() -> None:
    sections = {
        "T": {
            "run": 99,
            "own": "{{ run }}",
            "hdr": "{{ lute_config.run }}",
            "exp": "{{ experiment }}",
        },
        "U": {"other": "{{ T.run }}", "whole": "{{ T.own }}"},
    }
    assert sub(sections)["T"] == {"run": 99, "own": 99, "hdr": 12, "exp": "exp"}
    assert sub(sections)["U"] == {"other": 99, "whole": 99}


def test_value_naming_itself_takes_the_header() -> None:
    sections = {"T": {"run": "{{ run:04d }}", "experiment": "x{{ experiment }}"}}
    assert sub(sections)["T"] == {"run": "0012", "experiment": "xexp"}


def test_deep_paths_list_indices_and_dotted_keys() -> None:
    sections = {
        "A": {"x": {"y": {"z": "deep"}}, "l": ["zero", {"k": "one"}], "rayonix.bin_size": 4},
        "T": {
            "deep": "{{ A.x.y.z }}",
            "item": "{{ A.l.1.k }}",
            "dotted": "{{ A.rayonix.bin_size }}",
            "through": "{{ B.alias.y.z }}",
        },
        "B": {"alias": "{{ A.x }}"},
    }
    assert sub(sections)["T"] == {"deep": "deep", "item": "one", "dotted": 4, "through": "deep"}


def test_chains_across_sections_and_header() -> None:
    header = {"run": 5, "work_dir": "{{ $BASE }}/w", "out": "{{ work_dir }}/out"}
    sections = {
        "A": {"a": "{{ B.b }}-a"},
        "B": {"b": "{{ C.c }}-b"},
        "C": {"c": "{{ out }}/r{{ run:03d }}"},
    }
    result = resolve_document(header, sections, {"BASE": "/data"})
    assert result["header"]["out"] == "/data/w/out"
    assert result["sections"]["A"] == {"a": "/data/w/out/r005-b-a"}


def test_substitution_inside_lists() -> None:
    assert sub({"T": {"l": ["{{ run }}", "r{{ run }}", ["{{ experiment }}"]]}})["T"] == {"l": [12, "r12", ["exp"]]}


def test_text_without_substitution_is_untouched() -> None:
    sections = {"T": {"a": "{ run }", "b": "{{a{b}}", "c": "}} {{"}}
    assert sub(sections)["T"] == sections["T"]


# --- substitution errors --------------------------------------------------------------------------


def test_cycle_error_names_the_chain(tmp_path: Path) -> None:
    config = load(tmp_path, 'Test:\n  a: "{{ b }}"\n  b: "{{ Test.a }}"\n')
    err = error_of(config, "Test")
    assert err.message == "substitution cycle: Test.a -> Test.b -> Test.a"
    assert (err.key, err.line) == ("Test.a", 13)


def test_self_reference_through_a_mapping_is_a_cycle() -> None:
    with pytest.raises(ConfigError, match=r"^T\.a\.x: substitution cycle: T\.a\.x -> T\.a -> T\.a\.x$"):
        sub({"T": {"a": {"x": "{{ a }}"}}})


def test_undefined_name_names_file_key_and_line(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        NonExistentTask:
          test_nested:
            b:
              c: "x{{ nope.at_all }}"
        """,
    )
    err = error_of(config, "NonExistentTask")
    assert err.key == "NonExistentTask.test_nested.b.c"
    assert err.line == 15
    assert err.describe() == (
        f"{config.path}:15: NonExistentTask.test_nested.b.c: "
        "'{{ nope.at_all }}' refers to undefined name 'nope.at_all'"
    )


def test_undefined_env_var(tmp_path: Path) -> None:
    config = load(tmp_path, 'T:\n  p: "{{ $MISSING }}/x"\n', env={})
    err = error_of(config, "T")
    assert (err.key, err.line) == ("T.p", 13)
    assert err.message == "environment variable 'MISSING' used in '{{ $MISSING }}' is not set"


def test_error_in_referenced_value_points_at_its_source(tmp_path: Path) -> None:
    config = load(tmp_path, 'A:\n  a: "{{ $MISSING }}"\nB:\n  b: "{{ A.a }}"\n', env={})
    assert error_of(config, "B").key == "A.a"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ run:04q }}", "cannot format 12 with '04q' in '{{ run:04q }}' (Unknown format code"),
        ("{{ $E:04d }}", "cannot format 'abc' with '04d' in '{{ $E:04d }}' (invalid literal"),
        ("{{ }}", "substitution '{{ }}' does not name anything"),
        ("{{ $ }}", "substitution '{{ $ }}' does not name anything"),
        ("{{ A..b }}", "substitution '{{ A..b }}' does not name anything"),
    ],
)
def test_bad_substitutions(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        sub({"T": {"v": text}}, E="abc")
    assert info.value.message.startswith(message)
    assert info.value.key == "T.v"


def test_header_error_is_reported_with_header_key(tmp_path: Path) -> None:
    text = HEADER.replace('experiment: "TestYAMLSubs"', 'experiment: "{{ $EXP }}"')
    config = load_config(write(tmp_path, text), env={})
    with pytest.raises(ConfigError) as info:
        config.header()
    assert (info.value.key, info.value.line) == ("lute_config.experiment", 4)


def test_section_resolves_only_what_it_needs(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        Good:
          a: "{{ Ok.v }}-{{ run }}"
        Ok:
          v: "fine"
        Bad:
          x: "{{ undefined }}"
          y: "{{ $MISSING }}"
          z: "{{ Bad.x }}"
        """,
        env={},
    )
    assert config.section("Good") == {"a": "fine-12"}
    assert config.section("Ok") == {"v": "fine"}
    assert [(e.key, e.line) for e in config.errors()] == [("Bad.x", 17), ("Bad.y", 18)]
    with pytest.raises(ConfigError) as info:
        config.resolved()
    assert info.value.key == "Bad.x"


def test_missing_section(tmp_path: Path) -> None:
    config = load(tmp_path, "A:\n  a: 1\n")
    err = error_of(config, "Nope")
    assert (err.key, err.path) == ("Nope", str(config.path))


# --- LoadedConfig --------------------------------------------------------------------------------


def test_loaded_config_accessors(tmp_path: Path) -> None:
    config = load(tmp_path, 'B:\n  l:\n    - "{{ run }}"\n    - 2\nA:\n  a: "{{ run }}"\nEmpty:\n')
    assert config.section_names() == ["B", "A", "Empty"]
    assert config.has_section("A") and not config.has_section("lute_config")
    assert config.raw_sections["A"] == {"a": "{{ run }}"}
    assert config.raw_sections["Empty"] == {}
    assert config.section("Empty") == {}
    assert config.raw_header["run"] == 12
    assert config.line_of("lute_config.work_dir") == 9
    assert config.line_of("B.l") == 13
    assert config.line_of("B.l.1") == 15
    assert config.line_of("A.a") == 17
    assert config.line_of("A.nope") is None


def test_results_are_fresh_copies(tmp_path: Path) -> None:
    config = load(tmp_path, "A:\n  d: {k: 1}\n")
    config.section("A")["d"]["k"] = 2
    config.header()["run"] = 0
    assert config.section("A") == {"d": {"k": 1}}
    assert config.header()["run"] == 12
    assert config.raw_sections["A"] == {"d": {"k": 1}}


def test_task_timeout_defaults_to_600(tmp_path: Path) -> None:
    text = HEADER.replace("task_timeout: 600\n", "").replace("\n...\n", "\nt: '{{ task_timeout }}'\n")
    config = load_config(write(tmp_path, text), env={})
    assert "task_timeout" not in config.raw_header
    assert config.header()["task_timeout"] == 600
    assert config.header()["t"] == 600


def test_header_only_file_and_empty_second_document(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, HEADER), env={}).section_names() == []
    assert load_config(write(tmp_path, HEADER + "---\n...\n"), env={}).section_names() == []
    assert load_config(write(tmp_path, HEADER + "---\n# nothing\n"), env={}).resolved() == {
        "header": load_config(write(tmp_path, HEADER), env={}).header(),
        "sections": {},
    }


def test_duplicate_keys_keep_the_last(tmp_path: Path) -> None:
    config = load(tmp_path, "A:\n  p: first\n  p: second\n")
    assert config.section("A") == {"p": "second"}
    assert config.line_of("A.p") == 14


def test_env_defaults_to_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUTE_KERNEL_TEST_VAR", "from-os")
    config = load_config(write(tmp_path, HEADER + '---\nA:\n  v: "{{ $LUTE_KERNEL_TEST_VAR }}"\n'))
    assert config.section("A") == {"v": "from-os"}


# --- load errors ---------------------------------------------------------------------------------


def load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.path == str(path)
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    assert load_error(tmp_path / "nope.yaml").message == "configuration file not found"


def test_directory(tmp_path: Path) -> None:
    assert "directory" in load_error(tmp_path).message


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, HEADER)

    def deny(name: str, flags: int, mode: int = 0o777) -> int:
        raise PermissionError(13, "Permission denied", name)

    monkeypatch.setattr("lute_kernel.config.reading.os.open", deny)
    assert load_error(path).message == "configuration file is not readable (permission denied)"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"title: \xff\n")
    assert load_error(path).message == "configuration file is not UTF-8 text (byte 7)"


def test_not_yaml(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, "title: x\nwork_dir: /w\n  bad: [\n"))
    assert err.message.startswith("the file is not valid YAML: ")
    assert err.line == 3


def test_unknown_tag_is_not_yaml_we_accept(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, "!LUTE_DAG\ntask_name: Tester\n"))
    assert err.message == ("the file is not valid YAML: could not determine a constructor for the tag '!LUTE_DAG'")
    assert err.line == 1


@pytest.mark.parametrize(
    ("text", "count"),
    [("", 0), ("# only a comment\n", 0), (HEADER + "---\nA: {}\n---\nB: {}\n", 3)],
)
def test_document_count(tmp_path: Path, text: str, count: int) -> None:
    assert load_error(write(tmp_path, text)).message == (
        f"a configuration must have 1 or 2 YAML documents (header, then Task sections), not {count}"
    )


@pytest.mark.parametrize("text", ["- a\n- b\n", "---\n...\n", "just a string\n"])
def test_header_not_a_mapping(tmp_path: Path, text: str) -> None:
    assert load_error(write(tmp_path, text)).message == "the header (first document) must be a mapping"


def test_header_without_work_dir(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, "%YAML 1.3\n---\ntitle: x\nrun: 1\n"))
    assert (err.message, err.line) == ("work_dir is required in the header", 3)


@pytest.mark.parametrize(
    ("sections", "message", "key", "line"),
    [
        ("- A\n- B\n", "the second document must map each Task name to its section", None, 12),
        ("A: 3\n", "a section must be a mapping of parameters, not int", "A", 12),
        ("A: {}\nB: [1, 2]\n", "a section must be a mapping of parameters, not list", "B", 13),
        ("1: {}\n", "a section name must be a string (a Task class name)", "1", 12),
        (
            "lute_config: {}\n",
            "'lute_config' is reserved for the header and cannot name a section",
            "lute_config",
            12,
        ),
    ],
)
def test_bad_sections(tmp_path: Path, sections: str, message: str, key: str | None, line: int) -> None:
    err = load_error(write(tmp_path, HEADER + "---\n" + sections))
    assert (err.message, err.key, err.line) == (message, key, line)


def test_recursive_alias(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, HEADER + "---\nA:\n  l: &x [1, *x]\n"))
    assert err.message.startswith("the file is not a plain tree: ")


# --- every upstream configuration --------------------------------------------------------------


def upstream_configs() -> List[Path]:
    if not UPSTREAM.is_dir():
        return []
    return sorted(p for p in UPSTREAM.glob("*.yaml") if not p.name.endswith("dag.yaml"))


@needs_upstream
@pytest.mark.parametrize("path", upstream_configs(), ids=lambda p: p.name)
def test_upstream_config_loads(path: Path) -> None:
    config = load_config(path, env={"EXPERIMENT": "exp", "RUN": "12", "LUTE_PATH": "/lute"})
    assert config.errors() == []
    resolved = config.resolved()
    assert "work_dir" in resolved["header"]
    assert list(resolved["sections"]) == config.section_names()


@needs_upstream
def test_upstream_specifics() -> None:
    env = {"EXPERIMENT": "exp", "RUN": "12", "LUTE_PATH": "/lute"}
    mfx = load_config(UPSTREAM / "mfx.yaml", env=env)
    assert mfx.header()["work_dir"] == ""
    assert "ManipulateHKL" not in mfx.section_names()
    test = load_config(UPSTREAM / "test.yaml", env=env)
    assert test.header()["run"] == "12"
    assert test.section("IndexCCTBXXFEL")["data_spec"]["experiment"] == "exp"
    # duplicated smd_path: the last one wins, as with plain PyYAML
    assert test.section("AnalyzeSmallDataXAS")["smd_path"].endswith("Run0018.h5")
    assert test.line_of("Test.compound_var.int_var") == 139
    sfx = load_config(UPSTREAM / "functional_sfx_crystfel_config.yaml", env=env)
    assert sfx.section("ConcatenateStreamFiles")["in_file"] == "/tmp/sfx_mfx100848724_r51_crystfel/streams"
