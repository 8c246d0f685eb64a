"""Bounded configuration loading: files, YAML shape, tags, substitution budgets (generated cases)."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lute_kernel.config import load_config, resolve_document
from lute_kernel.config.limits import ConfigLimits
from lute_kernel.config.reading import _read_up_to, read_config_text
from lute_kernel.config.yaml_lines import USES_LIBYAML, DocumentShapeError, parse_documents
from lute_kernel.errors import ConfigError

UPSTREAM = Path(__file__).parents[3] / "shared/upstream-configs"
HEADER = '%YAML 1.3\n---\ntitle: "t"\nrun: 12\nexperiment: exp\nwork_dir: "/w"\n...\n---\n'
HEADER_LINES = 8
SMALL = ConfigLimits(max_bytes=4096, max_depth=10, max_alias_expansion=100, max_substituted_chars=1000)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


DEFAULT = ConfigLimits()


def load_error(path: Path, limits: ConfigLimits = DEFAULT) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, env={}, limits=limits)
    return info.value


def parse_error(text: str, limits: ConfigLimits = DEFAULT) -> ConfigError:
    """Load ``text`` (header + sections) through a file and return the ConfigError."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cfg.yaml"
        path.write_text(text, encoding="utf-8")
        return load_error(path, limits)


# --- reading: only regular files, never more than the limit ---------------------------------------


def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "a FIFO (named pipe), not a regular file" in load_error(fifo).message


def test_fifo_with_a_writer_is_refused_too(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    # A writer that never stops: the reader must not read from it at all.
    writer = threading.Thread(target=lambda: fifo.open("wb").close(), daemon=True)
    writer.start()
    assert "FIFO" in load_error(fifo).message
    with fifo.open("rb"):  # release the writer
        pass
    writer.join()


@pytest.mark.parametrize(("device", "kind"), [("/dev/zero", "character device"), ("/dev/null", "character device")])
def test_devices_are_refused(device: str, kind: str) -> None:
    err = load_error(Path(device))
    assert err.message.startswith(f"configuration path is a {kind}")
    assert err.path == device


def test_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        assert "a socket, not a regular file" in load_error(path).message
    finally:
        server.close()


def test_symlink_to_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link.yaml").symlink_to(tmp_path / "fifo")
    assert "FIFO" in load_error(tmp_path / "link.yaml").message


def test_symlink_loop_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert load_error(tmp_path / "a").message.startswith("configuration file cannot be read (")


def test_nul_in_the_path() -> None:
    with pytest.raises(ConfigError, match="not a valid file name"):
        read_config_text("a\0b", 100)


@given(extra=st.integers(min_value=1, max_value=10_000))
@FAST
def test_a_file_over_the_limit_is_refused_before_reading(tmp_path: Path, extra: int) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (SMALL.max_bytes + extra))
    err = load_error(path, SMALL)
    assert err.message == (
        f"configuration file is larger than 4,096 bytes ({SMALL.max_bytes + extra:,} bytes);"
        " a LUTE configuration is a few KB"
    )


def test_a_sparse_50_mb_file_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "sparse.yaml"
    with path.open("wb") as out:
        out.truncate(50_000_000)
    assert "larger than 16 MiB (50,000,000 bytes)" in load_error(path).message


def test_a_file_at_the_limit_is_read(tmp_path: Path) -> None:
    text = HEADER + "A: {}\n"
    limits = ConfigLimits(max_bytes=len(text.encode()))
    assert load_config(write(tmp_path, text), env={}, limits=limits).section_names() == ["A"]


@given(limit=st.integers(min_value=0, max_value=5000), available=st.integers(min_value=0, max_value=20_000))
@settings(max_examples=60, deadline=None)
def test_reading_never_takes_more_than_the_limit_plus_one_byte(limit: int, available: int) -> None:
    # A pipe stands for a file that under-reports its size (/proc) or grows while being read.
    read_end, write_end = os.pipe()
    try:
        os.set_blocking(write_end, False)
        written = 0
        while written < available:
            try:
                written += os.write(write_end, b"x" * min(4096, available - written))
            except BlockingIOError:
                break
        os.close(write_end)
        write_end = -1
        data = _read_up_to(read_end, limit + 1)
        assert len(data) == min(limit + 1, written)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_not_utf8_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(HEADER.encode() + b"A:\n  p: \xc3\x28\n")
    assert load_error(path).message == f"configuration file is not UTF-8 text (byte {len(HEADER) + 8})"


# --- the C parser: same data and the same lines as PyYAML's own -----------------------------------

needs_libyaml = pytest.mark.skipif(not USES_LIBYAML, reason="PyYAML without libyaml")


def upstream_files() -> List[Path]:
    return sorted(UPSTREAM.glob("*.yaml")) if UPSTREAM.is_dir() else []


@needs_libyaml
@pytest.mark.parametrize("path", upstream_files(), ids=lambda p: p.name)
def test_libyaml_and_pure_python_agree_on_upstream_files(path: Path) -> None:
    text = path.read_text()
    try:
        pure = parse_documents(text, pure_python=True)
    except yaml.YAMLError:  # the DAG files carry custom tags: both must refuse them
        with pytest.raises(yaml.YAMLError):
            parse_documents(text)
        return
    fast = parse_documents(text)
    assert [(d.data, d.lines, d.start_line) for d in fast] == [(d.data, d.lines, d.start_line) for d in pure]


scalars = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(), st.text(max_size=20), st.just("{{ run }}")
)
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(alphabet="abcxyz_.", min_size=1, max_size=6), inner, max_size=4),
    ),
    max_leaves=25,
)


@needs_libyaml
@given(data=st.dictionaries(st.text(alphabet="ABCT", min_size=1, max_size=4), trees, max_size=4), flow=st.booleans())
@settings(max_examples=80, deadline=None)
def test_libyaml_and_pure_python_agree_on_generated_documents(data: Dict[str, Any], flow: bool) -> None:
    text = "%YAML 1.3\n---\nwork_dir: /w\n...\n---\n" + yaml.safe_dump(data, default_flow_style=flow)
    fast, pure = parse_documents(text), parse_documents(text, pure_python=True)
    assert [(d.data, d.lines) for d in fast] == [(d.data, d.lines) for d in pure]


# --- aliases, nesting, cycles: refused before construction ---------------------------------------


def alias_bomb(levels: int, fanout: int, section: str = "Other") -> str:
    lines = [f"{section}:", "  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels + 1):
        lines.append(f"  a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * fanout)}]")
    return HEADER + "\n".join(lines) + "\nTest: {}\n"


@given(levels=st.integers(min_value=1, max_value=40), fanout=st.integers(min_value=2, max_value=30))
@settings(max_examples=60, deadline=None)
def test_alias_expansion_is_limited_before_anything_is_built(levels: int, fanout: int) -> None:
    expanded = 11  # a0: a list of ten scalars
    for _ in range(levels):
        expanded = 1 + fanout * expanded
    text = alias_bomb(levels, fanout)
    if expanded < 50_000:
        assert parse_documents(text)[1].data["Other"]["a0"] == ["x"] * 10
    elif expanded > 200_000:
        err = parse_error(text)
        assert "YAML aliases expand this document from" in err.message
        assert "(at most 100,000 more than written are allowed)" in err.message
        assert err.line == HEADER_LINES + 1


def test_a_billion_value_alias_bomb_fails_fast_even_in_a_section_that_is_not_run() -> None:
    err = parse_error(alias_bomb(9, 10))
    assert err.message.startswith("YAML aliases expand this document from 125 to 12,345,679,025 values")


def test_merge_key_bomb() -> None:
    lines = ["Other:", "  m0: &m0 {k0: 0, j0: 0}"]
    for level in range(1, 40):  # 2^40 keys once merged; 80 levels deep through the aliases
        lines.append(f"  m{level}: &m{level} {{<<: [*m{level - 1}, *m{level - 1}], k{level}: {level}}}")
    err = parse_error(HEADER + "\n".join(lines) + "\n")
    assert "aliases expand" in err.message


@given(count=st.integers(min_value=900, max_value=1100), flow=st.booleans())
@settings(max_examples=30, deadline=None)
def test_the_number_of_values_written_is_limited_before_composing(count: int, flow: bool) -> None:
    limits = ConfigLimits(max_values=1000)
    items = "[" + ", ".join("0" for _ in range(count)) + "]" if flow else "".join(f"\n    - {i}" for i in range(count))
    text = HEADER + "A:\n  v: " + items + "\n"
    # The header is 9 values (a mapping, 4 keys, 4 values); then the mapping, A, its mapping, v, the list.
    if 9 + 5 + count <= 1000:
        assert len(parse_documents(text, limits)[1].data["A"]["v"]) == count
    else:
        with pytest.raises(DocumentShapeError, match="the file holds more than 1,000 values"):
            parse_documents(text, limits)


def test_a_dense_file_under_the_size_limit_is_refused_early() -> None:
    err = parse_error(HEADER + "A:\n  v: [" + "0," * 1_500_000 + "0]\n")
    assert err.message == "the file holds more than 1,000,000 values; a LUTE configuration holds hundreds"
    assert err.line == HEADER_LINES + 2


def test_aliases_within_the_limit_load_as_before(tmp_path: Path) -> None:
    text = HEADER + "A:\n  base: &b {x: 1, y: [1, 2]}\n  copy: *b\n  merged:\n    <<: *b\n    z: 3\n"
    config = load_config(write(tmp_path, text), env={})
    assert config.section("A")["merged"] == {"x": 1, "y": [1, 2], "z": 3}
    assert config.line_of("A.merged.z") == HEADER_LINES + 6


@pytest.mark.parametrize("text", ["l: &x [1, *x]", "m: &x {a: *x}", "l: &x [[[*x]]]", "m: &x {a: [b, {c: *x}]}"])
def test_self_containing_aliases(text: str) -> None:
    err = parse_error(HEADER + "A:\n  " + text + "\n")
    assert err.message.startswith("the file is not a plain tree: a YAML alias at line")


def flow_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def flow_map(depth: int) -> str:
    return "{a: " * depth + "1" + "}" * depth


def block_map(depth: int) -> str:
    return "\n" + "".join(" " * (4 + 2 * i) + f"k{i}:\n" for i in range(depth)) + " " * (4 + 2 * depth) + "1"


def block_list(depth: int) -> str:
    return "\n  " + "- " * depth + "x"


SHAPES = [flow_list, flow_map, block_map, block_list]


def total_depth(shape: Any, depth: int) -> int:
    # The document (1), the section T (2), then the value: d lists, or d collections and a scalar.
    return 2 + depth + (0 if shape is flow_list else 1)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda f: f.__name__)
@given(depth=st.integers(min_value=90, max_value=130))
@settings(max_examples=20, deadline=None)
def test_nesting_is_limited(shape: Any, depth: int) -> None:
    text = HEADER + "T:\n  v: " + shape(depth) + "\n"
    if total_depth(shape, depth) <= 100:
        assert parse_documents(text)
    else:
        err = parse_error(text)
        assert err.message == "values are nested more than 100 levels deep"
        assert HEADER_LINES < (err.line or 0) <= HEADER_LINES + depth + 2


@pytest.mark.parametrize("shape", SHAPES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("depth", [999, 1001, 1500])
def test_nesting_beyond_what_libyaml_takes_is_a_config_error(shape: Any, depth: int) -> None:
    err = parse_error(HEADER + "T:\n  v: " + shape(depth) + "\n")
    assert "nested more than 100 levels deep" in err.message or "exceeded maximum nesting depth" in err.message
    assert err.line is not None


# --- bad tags: a ConfigError with the line, never a ValueError ------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('!!float "abc"', "'abc' is not a valid !!float (could not convert string to float: 'abc')"),
        ('!!float ""', "'' is not a valid !!float"),
        ('!!int "abc"', "'abc' is not a valid !!int (invalid literal"),
        ('!!int ""', "'' is not a valid !!int"),
        ('!!int "0x"', "'0x' is not a valid !!int"),
        ('!!bool "maybe"', "'maybe' is not a valid !!bool"),
        ('!!bool ""', "'' is not a valid !!bool"),
        ('!!timestamp "yesterday"', "'yesterday' is not a valid !!timestamp"),
        ("!!binary aGVsbG8=", "binary values (!!binary) cannot be parameters"),
        ("!!binary '!!!'", "binary values (!!binary) cannot be parameters"),
        ("!!set {a, b}", "sets (!!set) cannot be parameters; use a list"),
        ("!!python/object:os.system x", "could not determine a constructor for the tag '!!python/object:os.system'"),
        ("!!python/name:os.system ''", "could not determine a constructor for the tag '!!python/name:os.system'"),
        ("!unknown 3", "could not determine a constructor for the tag '!unknown'"),
        ("!!map x", "expected a mapping node, but found scalar"),
        ("!!seq x", "expected a sequence node, but found scalar"),
        ("!!str {a: 1}", "expected a scalar node, but found mapping"),
        ("1" + "0" * 5000, "is not a valid !!int (Exceeds the limit (4300 digits)"),
    ],
)
def test_bad_tags_are_config_errors_with_their_line(value: str, message: str) -> None:
    err = parse_error(HEADER + f"A:\n  ok: 1\n  v: {value}\n")
    assert err.message.startswith("the file is not valid YAML: "), err.message
    assert message in err.message
    assert err.line == HEADER_LINES + 3


@given(tag=st.sampled_from(["!!float", "!!int", "!!bool", "!!timestamp", "!!binary"]), text=st.text(max_size=30))
@settings(max_examples=200, deadline=None)
def test_any_scalar_under_a_typed_tag_loads_or_is_a_config_error(tag: str, text: str) -> None:
    quoted = '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    try:
        parse_documents(HEADER + f"A:\n  v: {tag} {quoted}\n")
    except yaml.YAMLError:
        pass


@given(
    text=st.text(
        alphabet=st.sampled_from([*"ab:-[]{}&*!|>'\"%@`#,? \n\t\\", "\x00", "\x07", "\ufeff", "é"]),
        max_size=60,
    )
)
@settings(max_examples=300, deadline=None)
def test_arbitrary_text_loads_or_is_a_config_error(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        path.write_text(HEADER + text, encoding="utf-8")
        try:
            config = load_config(path, env={})
            config.errors()
        except ConfigError as err:
            assert err.message


# --- substitution: iterative, bounded -------------------------------------------------------------


@given(length=st.integers(min_value=1, max_value=5000))
@settings(max_examples=15, deadline=None)
def test_long_chains_resolve_without_recursion(length: int) -> None:
    section: Dict[str, Any] = {f"x{i}": f"{{{{ x{i + 1} }}}}" for i in range(length)}
    section[f"x{length}"] = 7
    resolved = resolve_document({"work_dir": "/w"}, {"T": section}, {})["sections"]["T"]
    assert resolved["x0"] == 7 and resolved[f"x{length - 1}"] == 7


@given(length=st.integers(min_value=1, max_value=4000))
@settings(max_examples=15, deadline=None)
def test_long_chains_ending_nowhere_name_the_end(length: int) -> None:
    section = {f"x{i}": f"{{{{ x{i + 1} }}}}" for i in range(length)}
    with pytest.raises(ConfigError) as info:
        resolve_document({"work_dir": "/w"}, {"T": section}, {})
    assert info.value.key == f"T.x{length - 1}"
    assert info.value.message == f"'{{{{ x{length} }}}}' refers to undefined name 'x{length}'"


@given(length=st.integers(min_value=2, max_value=3000))
@settings(max_examples=15, deadline=None)
def test_long_cycles_are_cycles_with_a_short_message(length: int) -> None:
    section = {f"x{i}": f"{{{{ x{(i + 1) % length} }}}}" for i in range(length)}
    with pytest.raises(ConfigError) as info:
        resolve_document({"work_dir": "/w"}, {"T": section}, {})
    message = info.value.message
    assert message.startswith("substitution cycle: T.x0 -> ")
    assert message.endswith(" -> T.x0")
    assert len(message) < 600


def test_chains_that_nest_are_stopped_by_the_depth_limit() -> None:
    section: Dict[str, Any] = {f"y{i}": [f"{{{{ y{i + 1} }}}}"] for i in range(3000)}
    section["y3000"] = 1
    with pytest.raises(ConfigError, match="after substitution, values are nested more than 100 levels deep"):
        resolve_document({"work_dir": "/w"}, {"T": section}, {})


def test_doubling_strings_are_stopped_by_the_character_budget() -> None:
    section = {"s0": "x" * 10, **{f"s{i}": f"{{{{ s{i - 1} }}}}{{{{ s{i - 1} }}}}" for i in range(1, 40)}}
    with pytest.raises(ConfigError, match="substitutions produce more than 16,777,216 characters in this file"):
        resolve_document({"work_dir": "/w"}, {"T": section}, {})


def test_copies_of_a_large_value_are_stopped_by_the_copy_budget() -> None:
    sections = {"Big": {"l": list(range(100_000))}, "T": {f"c{i}": "{{ Big.l }}" for i in range(20)}}
    with pytest.raises(ConfigError, match="substitutions copy more than 1,000,000 values in this file"):
        resolve_document({"work_dir": "/w"}, sections, {})


def test_many_references_into_one_large_section_stay_linear() -> None:
    section: Dict[str, Any] = {f"k{i}": i for i in range(20_000)}
    section.update({f"r{i}": f"{{{{ k{i} }}}}" for i in range(20_000)})
    resolved = resolve_document({"work_dir": "/w"}, {"T": section}, {})["sections"]["T"]
    assert resolved["r19999"] == 19999


@given(
    width=st.integers(min_value=0, max_value=10**12),
    kind=st.sampled_from(["d", "x", "f", "e", "s", "%", ""]),
    form=st.sampled_from(["{w}", "0{w}", ">{w}", "*^{w}", ".{w}", "{w}.{w}", "+0{w},"]),
)
@settings(max_examples=200, deadline=None)
def test_format_widths_above_the_limit_are_refused(width: int, kind: str, form: str) -> None:
    spec = form.format(w=width) + kind
    try:
        result = resolve_document({"run": 12, "work_dir": "/w"}, {"T": {"v": f"{{{{ run:{spec} }}}}"}}, {})
    except ConfigError as err:
        if width > 1000:
            assert "width and precision are limited to 1000" in err.message
        return
    assert width <= 1000
    assert len(result["sections"]["T"]["v"]) <= 2100


def test_the_gigabyte_format_of_the_issue() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_document({"run": 1, "work_dir": "/w"}, {"T": {"v": "{{ run:1000000000d }}"}}, {})
    assert info.value.message == (
        "cannot format 1 with '1000000000d' in '{{ run:1000000000d }}' (width and precision are limited to 1000)"
    )


def test_long_references_are_shortened_in_messages() -> None:
    name = "n" * 10_000
    with pytest.raises(ConfigError) as info:
        resolve_document({"work_dir": "/w"}, {"T": {"v": f"{{{{ {name} }}}}"}}, {})
    assert len(info.value.message) < 300


def test_a_list_index_with_non_ascii_digits_is_not_an_index() -> None:
    with pytest.raises(ConfigError, match="undefined name"):
        resolve_document({"work_dir": "/w"}, {"T": {"l": [1, 2], "v": "{{ l.\u00b2 }}"}}, {})


def test_the_small_limits_apply_to_a_whole_load(tmp_path: Path) -> None:
    deep = HEADER + "A:\n  v: " + flow_list(9) + "\n"
    assert "nested more than 10 levels deep" in load_error(write(tmp_path, deep), SMALL).message
    text = HEADER + "A:\n  long: " + "x" * 500 + "\n  v: '{{ long }}{{ long }}{{ long }}'\n"
    config = load_config(write(tmp_path, text), env={}, limits=SMALL)
    with pytest.raises(ConfigError, match="more than 1,000 characters"):
        config.section("A")


@pytest.mark.parametrize("depth", [150, 999, 5000])
def test_without_libyaml_deep_nesting_is_a_config_error_too(depth: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import lute_kernel.config.yaml_lines as yaml_lines

    monkeypatch.setattr(yaml_lines, "_C_LOADER", yaml_lines._PURE_LOADER)
    err = parse_error(HEADER + "T:\n  v: " + flow_list(depth) + "\n")
    assert "nested more than 100 levels deep" in err.message
