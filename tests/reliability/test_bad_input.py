"""R1 bad input: hundreds of generated bad configs, each exit 2 with one message, nothing launched or written.

Every case is a class of hostile or broken input (malformed YAML, bad tags, alias bombs, huge files,
FIFOs and devices, deep nesting, long substitution chains, bad format specs, bad header types,
unknown keys at every level, wrong parameter types, unusable work_dir, unknown Tasks). Each runs
through the kernel's real entry, ``lute_kernel.api.prepare`` (what ``lute-kernel run`` calls), and
must raise an input error (exit code 2) with one short message naming the problem, write nothing
in work_dir (no lute.db; an existing one unchanged) and make no run directory. A representative
subset also runs through the real CLI (``python -m lute_kernel.cli run``), in parallel, each with a
private TMPDIR: exit 2, nothing on stdout, stderr one ``error:`` message without a traceback, the
TMPDIR left empty. Every case has 30 s (pytest-timeout, subprocess timeout). The figures (cases
tried, cases as promised) go to ``$LUTE_RELIABILITY_FIGURES`` for ``just reliability``.

Not here: DB-side bad input (integers >= 2^63 in parameters, keys differing only in case, NUL in
keys, reserved column names, a lute.db that is a directory) is not refused before launch yet; those
cases belong with the DB's fix. Lone surrogates are here only as a YAML escape, which libyaml refuses.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest
from conftest import REPO, TEST_TASKS, run_cli
from figures import record

from lute_kernel.api import prepare
from lute_kernel.config.yaml_lines import USES_LIBYAML
from lute_kernel.errors import EXIT_BAD_INPUT, InputError
from lute_kernel.registry import Registry, discover

pytestmark = pytest.mark.reliability

Make = Callable[[Path, Path], Path]
"""(case folder, work_dir) -> the path given to ``-c``."""

HOST_ENV = {"LUTE_R1_SET": "set", "PATH": "/usr/bin:/bin"}


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it, the Task to run, a substring its message must contain."""

    name: str
    make: Make
    expect: str = ""
    task: str = "Test"
    cli: bool = False
    in_process: bool = True


# --- building configs ------------------------------------------------------------------------------

GOOD_TEST = "Test:\n  compound_var:\n    int_var: 1\n  sleep_secs: 0\n"


def header_text(work: Path, extra: str = "", **fields: Optional[str]) -> str:
    values: Dict[str, Optional[str]] = {
        "title": '"bad input"',
        "experiment": '"xpptut15"',
        "run": "14",
        "date": '"2026/11/22"',
        "lute_version": "0.1",
        "task_timeout": "60",
        "work_dir": f'"{work}"',
    }
    values.update(fields)
    lines = "".join(f"{key}: {value}\n" for key, value in values.items() if value is not None)
    return "%YAML 1.3\n---\n" + lines + extra + "...\n---\n"


def write(folder: Path, data: str | bytes, name: str = "config.yaml") -> Path:
    path = folder / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def config(body: str = GOOD_TEST, extra: str = "", **fields: Optional[str]) -> Make:
    return lambda folder, work_dir: write(folder, header_text(work_dir, extra, **fields) + body + "...\n")


def raw(text: str) -> Make:
    """A whole file; ``{work_dir}`` is replaced."""
    return lambda folder, work_dir: write(folder, text.replace("{work_dir}", str(work_dir)))


def raw_bytes(make_bytes: Callable[[Path], bytes]) -> Make:
    return lambda folder, work_dir: write(folder, make_bytes(work_dir))


def with_test(*lines: str) -> str:
    return "Test:\n  compound_var:\n    int_var: 1\n" + "".join(f"  {line}\n" for line in lines)


# --- the generated classes -------------------------------------------------------------------------


def yaml_syntax() -> Iterator[Case]:
    broken = {
        "mapping-in-plain": "str_var: a: b",
        "unclosed-list": "str_var: [1, 2",
        "unclosed-map": "str_var: {a: 1",
        "unterminated-double": 'str_var: "abc',
        "unterminated-single": "str_var: 'abc",
        "extra-bracket": "str_var: [a, b]]",
        "extra-brace": "str_var: {a: 1}}",
        "undefined-alias": "str_var: *nowhere",
        "at-sign": "str_var: @x",
        "backtick": "str_var: `x",
        "percent": "str_var: %x",
        "bad-escape": 'str_var: "\\q"',
        "bad-hex-escape": 'str_var: "\\xZZ"',
        "missing-colon": "str_var x\n  float_var: 1",
        "dedent-then-indent": "str_var: x\n     float_var: 1",
        "sequence-in-mapping": "str_var: x\n  - item",
        "tab-indent": "str_var: x\n\tfloat_var: 1",
        "unhashable-key": "? [a, b]\n  : x",
        "merge-scalar": "<<: 5",
        "merge-list-of-scalars": "<<: [1, 2]",
        "nul-character": "str_var: a\x00b",
        "bell-character": "str_var: a\x07b",
        "escape-character": "str_var: a\x1bb",
        "anchor-without-node": "str_var: &a",
        "two-anchors": "str_var: &a &b x",
        "flow-in-key": "{a: 1}: x",
        "block-scalar-bad-indent": "str_var: |\n x\n   y\n  z: 1",
    }
    if USES_LIBYAML:  # libyaml refuses lone surrogates; PyYAML's own parser would let one through
        broken["surrogate-escape"] = 'str_var: "\\ud800"'
    for label, line in broken.items():
        yield Case(f"yaml/section/{label}", config(with_test(line)), cli=label in ("mapping-in-plain", "bad-escape"))
    for label in ("mapping-in-plain", "unclosed-list", "undefined-alias", "nul-character", "bad-escape"):
        line = broken[label].split("\n")[0].replace("str_var", "notes")
        yield Case(f"yaml/header/{label}", config(extra=line + "\n"))
    for label in ("unclosed-map", "undefined-alias", "unterminated-double", "percent"):
        body = GOOD_TEST + "OtherTask:\n  " + broken[label] + "\n"
        yield Case(f"yaml/section-not-run/{label}", config(body))
    yield Case("yaml/version-2", raw("%YAML 2.0\n---\nwork_dir: {work_dir}\n"), "YAML")
    yield Case("yaml/three-documents", config(GOOD_TEST + "---\nMore: {}\n"), "1 or 2 YAML documents")


def shapes() -> Iterator[Case]:
    yield Case("shape/empty-file", raw(""), "not 0")
    yield Case("shape/only-comments", raw("# nothing here\n"), "not 0")
    yield Case("shape/header-is-a-list", raw("- a\n- b\n"), "must be a mapping", cli=True)
    yield Case("shape/header-is-a-string", raw("just text\n"), "must be a mapping")
    yield Case("shape/header-is-null", raw("---\n...\n"), "must be a mapping")
    yield Case("shape/no-work-dir", config(work_dir=None), "work_dir is required", cli=True)
    yield Case("shape/sections-a-list", config("- Test\n- Other\n"), "must map each Task name")
    yield Case("shape/section-a-number", config("Test: 3\n"), "must be a mapping of parameters")
    yield Case("shape/section-a-list", config("Test: [1, 2]\n"), "must be a mapping of parameters")
    yield Case("shape/section-a-string", config("Test: text\n"), "must be a mapping of parameters")
    yield Case("shape/section-name-a-number", config("1: {}\n" + GOOD_TEST), "must be a string")
    yield Case("shape/section-lute-config", config("lute_config: {}\n" + GOOD_TEST), "reserved")


def bad_bytes() -> Iterator[Case]:
    samples = {
        "ff": b"\xff",
        "lone-continuation": b"\x80",
        "truncated-two-byte": b"\xc3(",
        "utf8-surrogate": b"\xed\xa0\x80",
        "overlong": b"\xc0\xaf",
        "five-byte": b"\xf8\x88\x80\x80\x80",
        "latin1-text": "caf\xe9".encode("latin-1"),
    }
    for label, data in samples.items():
        yield Case(
            f"bytes/in-section/{label}",
            raw_bytes(lambda w, data=data: header_text(w).encode() + b"Test:\n  str_var: x" + data + b"\n"),
            "not UTF-8",
            cli=label == "ff",
        )
    yield Case("bytes/in-header", raw_bytes(lambda w: b"title: \xfe\n" + f"work_dir: {w}\n".encode()), "not UTF-8")
    yield Case("bytes/at-the-end", raw_bytes(lambda w: header_text(w).encode() + GOOD_TEST.encode() + b"\xe2\x82"))
    yield Case("bytes/utf16", raw_bytes(lambda w: f"work_dir: {w}\n".encode("utf-16")), "not UTF-8")


def _fifo(folder: Path, work_dir: Path) -> Path:
    os.mkfifo(folder / "fifo.yaml")
    return folder / "fifo.yaml"


def _socket(folder: Path, work_dir: Path) -> Path:
    path = folder / "s.yaml"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the socket file stays
    return path


def _link(target: Callable[[Path, Path], Path]) -> Make:
    def make(folder: Path, work_dir: Path) -> Path:
        (folder / "link.yaml").symlink_to(target(folder, work_dir))
        return folder / "link.yaml"

    return make


def _loop(folder: Path, work_dir: Path) -> Path:
    (folder / "a.yaml").symlink_to(folder / "b.yaml")
    (folder / "b.yaml").symlink_to(folder / "a.yaml")
    return folder / "a.yaml"


def _sparse(size: int) -> Make:
    def make(folder: Path, work_dir: Path) -> Path:
        path = folder / "sparse.yaml"
        with path.open("wb") as out:
            out.write(header_text(work_dir).encode())
            out.truncate(size)
        return path

    return make


def _over_limit(folder: Path, work_dir: Path) -> Path:
    # Valid YAML all the way: a header, then a comment line that takes the file past 16 MiB.
    text = header_text(work_dir) + GOOD_TEST + "#" + "x" * (16 * 1024 * 1024) + "\n"
    return write(folder, text)


def files() -> Iterator[Case]:
    yield Case("file/missing", lambda folder, _w: folder / "nowhere.yaml", "not found", cli=True)
    yield Case("file/a-directory", lambda folder, _w: folder, "directory")
    yield Case("file/fifo", _fifo, "a FIFO (named pipe)", cli=True)
    yield Case("file/dev-zero", lambda _f, _w: Path("/dev/zero"), "character device", cli=True)
    yield Case("file/dev-null", lambda _f, _w: Path("/dev/null"), "character device")
    yield Case("file/dev-urandom", lambda _f, _w: Path("/dev/urandom"), "character device")
    yield Case("file/socket", _socket, "a socket")
    yield Case("file/link-to-fifo", _link(_fifo), "FIFO")
    yield Case("file/link-to-dev-zero", _link(lambda _f, _w: Path("/dev/zero")), "character device")
    yield Case("file/symlink-loop", _loop, "cannot be read")
    yield Case("file/dangling-link", _link(lambda folder, _w: folder / "gone.yaml"), "not found")
    yield Case("file/over-16-mib", _over_limit, "larger than 16 MiB", cli=True)
    yield Case("file/sparse-50-mb", _sparse(50_000_000), "larger than 16 MiB (50,000,000 bytes)")
    yield Case("file/sparse-16-gib", _sparse(2**34), "larger than 16 MiB")
    dense = "Test:\n  compound_var:\n    int_var: 1\n  str_var: [" + "0," * 1_200_000 + "0]\n"
    yield Case("file/a-million-values", config(dense), "more than 1,000,000 values", cli=True)
    yield Case("file/nul-in-path", lambda folder, _w: Path(f"{folder}/a\0b.yaml"), "not a valid file name")


def header_types() -> Iterator[Case]:
    timeouts = {
        "true": "true",
        "false": "false",
        "zero": "0",
        "minus-one": "-1",
        "2-pow-31": str(2**31),
        "2-pow-40": str(2**40),
        "just-over-the-cap": "2000001",
        "x": '"x"',
        "empty": '""',
        "fraction": "1.5",
        "list": "[60]",
        "mapping": "{s: 60}",
        "null": "null",
        "inf": ".inf",
        "nan": ".nan",
        "exponent-string": '"1e3"',
        "huge": "9" * 400,
    }
    for label, value in timeouts.items():
        cli = label in ("true", "2-pow-40", "x")
        yield Case(f"header/task_timeout/{label}", config(task_timeout=value), "task_timeout", cli=cli)
    for label, value in {"true": "true", "2-pow-63": str(2**63), "list": "[1]", "mapping": "{a: 1}"}.items():
        yield Case(f"header/run/{label}", config(run=value), "run")
    for field in ("title", "experiment", "date"):
        for label, value in {"list": "[a]", "mapping": "{a: b}"}.items():
            yield Case(f"header/{field}/{label}", config(**{field: value}), field)
    yield Case("header/lute_version/list", config(lute_version="[1]"), "lute_version")
    work_dirs = {
        "empty": '""',
        "missing-folder": '"/nonexistent/lute-r1"',
        "null": "null",
        "number": "123",
        "list": "[a]",
        "nul-byte": '"/tmp/a\\0b"',
        "very-long": '"' + "/x" * 3000 + '"',
        "unset-env": '"{{ $LUTE_R1_UNSET }}"',
    }
    for label, value in work_dirs.items():
        yield Case(f"header/work_dir/{label}", config(work_dir=value), "work_dir", cli=label == "missing-folder")

    def work_dir_a_file(folder: Path, work_dir: Path) -> Path:
        write(folder, "not a folder\n", "a_file")
        return write(folder, header_text(folder / "a_file") + GOOD_TEST)

    yield Case("header/work_dir/a-file", work_dir_a_file, "not a directory", cli=True)


def unknown_keys() -> Iterator[Case]:
    for count in (1, 10, 1000, 20_000, 100_000):
        body = with_test(*(f"unknown_{i}: {i}" for i in range(count)))
        # 100,000 keys (the 193 KB message) through the CLI only: loading them is seconds.
        big = count == 100_000
        expect = "... and " if count > 10 else "unknown parameter"
        yield Case(f"keys/section/{count}", config(body), expect, cli=big, in_process=not big)
    for name in ("bogus", "int_Var", "INT_VAR", "dict-var", "a.b", "é", "x" * 300, "'1'", "lute_config2"):
        body = f"Test:\n  compound_var:\n    int_var: 1\n    {name}: 2\n"
        yield Case(f"keys/nested/{name[:20]}", config(body), "unknown parameter", cli=name == "bogus")
    yield Case(
        "keys/nested/many", config("Test:\n  compound_var: {" + ", ".join(f"k{i}: 1" for i in range(500)) + "}\n")
    )
    yield Case("keys/nested/int-key", config("Test:\n  compound_var: {int_var: 1, 7: 2}\n"))
    yield Case("keys/nested-in-flow", config("Test:\n  compound_var: {int_var: 1, bogus: 2}\n"), "compound_var.bogus")
    yield Case("keys/typo-of-a-field", config(with_test("float_vr: 1.0")), "float_vr")
    yield Case("keys/header-name-in-section", config(with_test("task_timeout: 5")), "task_timeout")
    for task, good in (("TestSocket", "array_size: 4"), ("TestWriteOutput", "num_vals: 3")):
        for count in (1, 50):
            body = f"{task}:\n  {good}\n" + "".join(f"  extra_{i}: {i}\n" for i in range(count))
            yield Case(f"keys/{task}/{count}", config(body), "unknown parameter", task=task)


def wrong_types() -> Iterator[Case]:
    bad: Dict[str, List[str]] = {
        "float_var": ['"abc"', "[]", "{}", ".inf", "-.inf", ".nan", '"1,5"', "null"],
        "str_var": ["123", "[]", "{}", "1.5", "true", "null"],
        "throw_error": ['"abc"', "[]", "{}", "2", "null", '"maybe"'],
        "sleep_secs": ["-1", '"x"', "[]", ".nan", "-.inf"],
    }
    for field, values in bad.items():
        for value in values:
            yield Case(f"types/{field}/{value}", config(with_test(f"{field}: {value}")), field, cli=value == '"abc"')
    for value in ("5", '"x"', "[]", "null", "[int_var, 1]"):
        yield Case(f"types/compound_var/{value}", config(f"Test:\n  compound_var: {value}\n"), "compound_var")
    for value in ('"x"', "1.5", "[]", "{}", "null"):
        body = f"Test:\n  compound_var:\n    int_var: {value}\n"
        yield Case(f"types/compound_var.int_var/{value}", config(body), "compound_var.int_var")
    for value in ("[]", '"x"', "{a: [1]}", "{a: {b: c}}", "{a: 1}", "{a: null}"):
        body = f"Test:\n  compound_var:\n    int_var: 1\n    dict_var: {value}\n"
        yield Case(f"types/compound_var.dict_var/{value}", config(body), "compound_var.dict_var")
    for task, field, value in (
        ("TestSocket", "array_size", "-1"),
        ("TestSocket", "array_size", '"x"'),
        ("TestSocket", "num_arrays", "1.5"),
        ("TestWriteOutput", "num_vals", "0"),
        ("TestWriteOutput", "outfile_name", "[]"),
        ("TestWriteOutput", "sleep_secs", "-0.5"),
    ):
        yield Case(f"types/{task}.{field}/{value}", config(f"{task}:\n  {field}: {value}\n"), field, task=task)
    yield Case("types/missing-required", config("Test:\n  float_var: 1.5\n"), "required parameter is missing")


def substitutions() -> Iterator[Case]:
    refs = {
        "undefined": ("{{ nope }}", "undefined name 'nope'"),
        "undefined-dotted": ("{{ Test.nope.deeper }}", "undefined name"),
        "undefined-section": ("{{ NoSuchTask.x }}", "undefined name"),
        "index-out-of-range": ("{{ compound_var.dict_var.9 }}", "undefined name"),
        "unset-env": ("{{ $LUTE_R1_UNSET }}", "not set"),
        "unset-env-in-text": ("/data/{{ $LUTE_R1_UNSET }}/x", "not set"),
        "unset-env-with-spec": ("{{ $LUTE_R1_UNSET:04d }}", "not set"),
        "empty": ("{{ }}", "does not name anything"),
        "dollar-only": ("{{ $ }}", "does not name anything"),
        "double-dot": ("{{ a..b }}", "does not name anything"),
        "leading-dot": ("{{ .a }}", "does not name anything"),
        "trailing-dot": ("{{ a. }}", "does not name anything"),
    }
    for label, (ref, expect) in refs.items():
        yield Case(f"subst/{label}", config(with_test(f'str_var: "{ref}"')), expect, cli=label == "undefined")
    yield Case("subst/in-header", config(experiment='"{{ $LUTE_R1_UNSET }}"'), "not set")
    yield Case(
        "subst/in-referenced-section", config(with_test('str_var: "{{ Other.p }}"') + 'Other:\n  p: "{{ x }}"\n')
    )
    for length in (2, 3, 10, 100, 3000):
        chain = "".join(f'  c{i}: "{{{{ c{(i + 1) % length} }}}}"\n' for i in range(length))
        cli = length == 3000
        yield Case(f"subst/cycle/{length}", config(with_test('str_var: "{{ c0 }}"') + chain), "cycle", cli=cli)
    for length in (10, 100, 1000, 3000, 10_000):
        chain = "".join(f'  c{i}: "{{{{ c{i + 1} }}}}"\n' for i in range(length))
        yield Case(f"subst/chain-to-nowhere/{length}", config(with_test('str_var: "{{ c0 }}"') + chain), "undefined")
    for length in (150, 3000):
        chain = "".join(f'  n{i}: ["{{{{ n{i + 1} }}}}"]\n' for i in range(length)) + f"  n{length}: 1\n"
        yield Case(f"subst/nesting-chain/{length}", config(with_test('float_var: "{{ n0 }}"') + chain), "nested")
    doubling = '  s0: "xxxxxxxxxx"\n' + "".join(
        f'  s{i}: "{{{{ s{i - 1} }}}}{{{{ s{i - 1} }}}}"\n' for i in range(1, 40)
    )
    yield Case("subst/doubling-bomb", config(with_test('str_var: "{{ s39 }}"') + doubling), "characters", cli=True)
    copies = "".join(f'  c{i}: "{{{{ Big.l }}}}"\n' for i in range(20))
    big = "Big:\n  l: [" + ", ".join("1" for _ in range(60_000)) + "]\n"
    yield Case("subst/copy-bomb", config(with_test() + copies + big), "copy more than")


def format_specs() -> Iterator[Case]:
    for width in (1001, 5000, 10**6, 10**9, 10**30):
        for form in ("{w}d", "0{w}d", ">{w}", ".{w}f", "{w}.2f", "*^{w}"):
            spec = form.format(w=width)
            cli = width == 10**9 and form == "{w}d"
            ref = f"{{{{ run:{spec} }}}}"
            yield Case(f"format/{form}/{width}", config(with_test(f'str_var: "{ref}"')), "limited to 1000", cli=cli)
    for spec in ("04q", "z", ",,d", ".-1f", "%%", "10.2.3f", ".f", "x" * 120):
        yield Case(f"format/bad/{spec[:12]}", config(with_test(f'str_var: "{{{{ run:{spec} }}}}"')), "format")
    yield Case("format/string-as-number", config(with_test('str_var: "{{ experiment:04d }}"')), "cannot format")


def alias_bomb(levels: int, fanout: int, indent: str = "  ") -> str:
    lines = [f"{indent}a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{indent}a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fanout)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def aliases() -> Iterator[Case]:
    for levels, fanout in ((4, 20), (5, 10), (6, 10), (9, 10), (3, 100), (2, 400), (30, 2), (90, 2), (120, 2)):
        expect = "aliases expand" if levels < 95 else "nested more than 100"
        label = f"{levels}x{fanout}"
        bomb = alias_bomb(levels, fanout)
        yield Case(f"alias/not-run/{label}", config(GOOD_TEST + "Other:\n" + bomb), expect, cli=label == "9x10")
        yield Case(f"alias/in-test/{label}", config(GOOD_TEST + bomb), expect)
        if levels < 95:
            yield Case(f"alias/in-header/{label}", config(extra="bomb:\n" + bomb), expect)
    merges = ["  m0: &m0 {k0: 0, j0: 0}"] + [
        f"  m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: {i}}}" for i in range(1, 40)
    ]
    yield Case("alias/merge-bomb", config(GOOD_TEST + "Other:\n" + "\n".join(merges) + "\n"), "aliases expand")
    for label, text in {
        "list": "l: &x [1, *x]",
        "mapping": "m: &x {a: *x}",
        "deep": "l: &x [[[*x]]]",
        "through-a-mapping": "m: &x {a: [b, {c: *x}]}",
    }.items():
        yield Case(f"alias/recursive/{label}", config(GOOD_TEST + "Other:\n  " + text + "\n"), "plain tree")


def nesting() -> Iterator[Case]:
    shapes: Dict[str, Callable[[int], str]] = {
        "flow-list": lambda d: "[" * d + "]" * d,
        "flow-map": lambda d: "{a: " * d + "1" + "}" * d,
        "block-list": lambda d: "\n    " + "- " * d + "x",
        "block-map": lambda d: (
            "\n" + "".join(" " * (4 + 2 * i) + f"k{i}:\n" for i in range(d)) + " " * (4 + 2 * d) + "1"
        ),
    }
    for label, shape in shapes.items():
        for depth in (101, 150, 999, 1001, 5000):
            if label == "block-map" and depth > 1001:
                continue  # 5000 levels of indentation is a 25 MB file: the size limit case covers it
            body = with_test("str_var: " + shape(depth))
            yield Case(f"nesting/{label}/{depth}", config(body), "nest", cli=(label, depth) == ("flow-list", 5000))
        yield Case(f"nesting/not-run/{label}", config(GOOD_TEST + "Other:\n  v: " + shape(300) + "\n"), "nest")
        yield Case(f"nesting/header/{label}", config(extra="notes: " + shape(300) + "\n"), "nest")


def unknown_tasks() -> Iterator[Case]:
    names = ["Tset", "test", "TEST", "Tester2", "", " ", "Test ", "Te st", "T" * 300, "../Test", "lute_config"]
    names += ["Test.Test", "TestSocket2", "Test\u00e9", "Test\x00"]
    for name in names:
        yield Case(f"task/{name[:20]!r}", config(), "unknown Task", task=name, cli=name == "Tset")


def all_cases() -> List[Case]:
    cases = [
        case
        for generate in (
            yaml_syntax,
            shapes,
            bad_bytes,
            files,
            header_types,
            unknown_keys,
            wrong_types,
            substitutions,
            format_specs,
            aliases,
            nesting,
            unknown_tasks,
        )
        for case in generate()
    ]
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


CASES = all_cases()
IN_PROCESS = [case for case in CASES if case.in_process]
CLI_CASES = [case for case in CASES if case.cli]
SEEDED = {case.name for index, case in enumerate(CASES) if index % 7 == 0}
"""Cases that run with an existing lute.db, which must stay byte for byte the same."""

_tried: Dict[str, int] = {}
_failing: Dict[str, int] = {}
"""Runs started and runs not (yet) passed, per case name: a case is as promised when none failed."""


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 300
    assert len(CLI_CASES) >= 25


@pytest.fixture(scope="module", autouse=True)
def figures() -> Iterator[None]:
    yield
    tried = [name for name in _tried if _tried[name]]
    record("R1 bad input", len(tried), sum(1 for name in tried if not _failing.get(name)))


def _started(name: str) -> None:
    _tried[name] = _tried.get(name, 0) + 1
    _failing[name] = _failing.get(name, 0) + 1


def _passed(name: str) -> None:
    _failing[name] -= 1


# --- what every case must leave behind: nothing ----------------------------------------------------


def seed_database(work_dir: Path) -> None:
    """A lute.db as a previous run leaves it (any SQLite file will do: it must not change)."""
    with sqlite3.connect(work_dir / "lute.db") as con:
        con.execute('CREATE TABLE "Test" (id INTEGER PRIMARY KEY, "result.summary" TEXT, valid_flag INTEGER)')
        con.execute("INSERT INTO \"Test\" VALUES (1, 'seeded', 1)")
    con.close()


def snapshot(work_dir: Path) -> Dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<not a file>"
        for path in sorted(work_dir.iterdir())
    }


def case_folders(root: Path, case: Case) -> Tuple[Path, Path, Path]:
    """Make (case folder, work_dir, private TMPDIR) under ``root``; seed the DB when asked."""
    folder, work_dir, tmpdir = root / "case", root / "work", root / "tmp"
    for path in (folder, work_dir, tmpdir):
        path.mkdir(parents=True)
    if case.name in SEEDED:
        seed_database(work_dir)
    return folder, work_dir, tmpdir


@pytest.fixture(scope="module")
def registry() -> Registry:
    return discover([TEST_TASKS, REPO / "tasks"], entry_points=False)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", IN_PROCESS, ids=[case.name for case in IN_PROCESS])
def test_bad_input_is_refused_in_process(case: Case, tmp_path: Path, registry: Registry) -> None:
    _started(case.name)
    folder, work_dir, _tmpdir = case_folders(tmp_path, case)
    path = case.make(folder, work_dir)
    before = snapshot(work_dir)
    with pytest.raises(InputError) as info:
        prepare(case.task, path, registry=registry, site="local", host_env=HOST_ENV)
    message = str(info.value)
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert message.strip(), "an empty message"
    assert "Traceback" not in message
    assert len(message) < 4000, f"{len(message)} characters: a message must summarize"
    assert case.expect in message, message[:500]
    assert snapshot(work_dir) == before, "work_dir changed: something was written"
    _passed(case.name)


# --- the real CLI, a representative subset, in parallel --------------------------------------------


def _cli_env(tmpdir: Path) -> Dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "LUTE_SITE"}
    env.update(LUTE_TASKS_PATH=str(TEST_TASKS), TMPDIR=str(tmpdir), COLUMNS="200", PYTHONPATH=str(REPO))
    return env


@dataclass
class CliRun:
    result: Optional[subprocess.CompletedProcess[str]]
    before: Dict[str, str]
    after: Dict[str, str]
    tmp_left: List[str]
    timed_out: bool = False


def _run_cli_case(case: Case, root: Path) -> CliRun:
    folder, work_dir, tmpdir = case_folders(root, case)
    path = case.make(folder, work_dir)
    before = snapshot(work_dir)
    try:
        # NUL cannot be in argv: such names/paths are in-process only (none is marked cli).
        result: Optional[subprocess.CompletedProcess[str]] = run_cli(
            "run", case.task, "-c", str(path), env=_cli_env(tmpdir), timeout=30
        )
        timed_out = False
    except subprocess.TimeoutExpired:
        result, timed_out = None, True
    return CliRun(result, before, snapshot(work_dir), sorted(p.name for p in tmpdir.iterdir()), timed_out)


@pytest.fixture(scope="module", autouse=True)
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Future[CliRun]]]:
    """Start every CLI case when the module starts: they run while the in-process cases do."""
    roots = {case.name: tmp_path_factory.mktemp("cli") for case in CLI_CASES}
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {case.name: pool.submit(_run_cli_case, case, roots[case.name]) for case in CLI_CASES}


@pytest.mark.parametrize("case", CLI_CASES, ids=[case.name for case in CLI_CASES])
def test_bad_input_is_refused_by_the_cli(case: Case, cli_runs: Dict[str, Future[CliRun]]) -> None:
    _started(case.name)
    run = cli_runs[case.name].result()
    assert not run.timed_out, "over 30 s"
    assert run.result is not None
    out, err, code = run.result.stdout, run.result.stderr, run.result.returncode
    assert code == EXIT_BAD_INPUT, (out, err[:2000])
    assert out == "", out[:2000]
    assert err.startswith("error: ") and err.count("error:") == 1, err[:2000]
    assert "Traceback" not in err, err[:2000]
    assert case.expect in err, err[:500]
    assert run.after == run.before, "work_dir changed: something was written"
    assert run.tmp_left == [], f"left in TMPDIR: {run.tmp_left}"
    _passed(case.name)
