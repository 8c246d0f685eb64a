"""A config read back from the parse cache is the config PyYAML parses, and PyYAML is then not imported.

Generated configs are loaded twice (the first parse keeps its entry, the second reads it) and
compared — header, sections and the line of every key; a fresh interpreter loading a kept config
never imports ``yaml``. What JSON cannot carry back (dates, int keys, binary, sets) is not kept,
errors are PyYAML's every time, a corrupt or foreign entry is a miss, and the folder stays bounded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import yaml
from conftest import REPO, json_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lute_kernel import parse_cache, parse_memo
from lute_kernel.config import load_config
from lute_kernel.errors import ConfigError

HEADER = {"title": "t", "experiment": "xpptut15", "run": 14, "date": "2026/11/22", "work_dir": "/tmp"}


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    monkeypatch.delenv("LUTE_NO_PARSE_CACHE", raising=False)
    parse_memo.disable()  # every load below goes to the disk cache or PyYAML
    yield folder


def _entries() -> List[str]:
    folder = parse_cache.cache_dir()
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _write(folder: Path, sections: Dict[str, Any], name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(
        "---\n" + yaml.safe_dump(HEADER) + "...\n---\n" + yaml.safe_dump(sections, sort_keys=False) + "...\n"
    )
    return path


def _seen(path: Path) -> Dict[str, Any]:
    config = load_config(path, env={})
    keys = [f"{name}.{key}" for name in config.section_names() for key in config.raw_sections[name]]
    return {
        "header": config.raw_header,
        "sections": config.raw_sections,
        "lines": {key: config.line_of(key) for key in [*keys, "lute_config.work_dir", "lute_config.run"]},
    }


_value = json_values(max_int=2**40, max_leaves=6)
_sections = st.dictionaries(
    st.from_regex(r"[A-Z][A-Za-z0-9]{0,8}", fullmatch=True),
    st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True), _value, max_size=4),
    min_size=1,
    max_size=3,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_sections)
def test_a_kept_config_is_the_config_pyyaml_parses(tmp_path: Path, sections: Dict[str, Any]) -> None:
    path = _write(tmp_path, sections)
    os.environ["LUTE_NO_PARSE_CACHE"] = "1"
    try:
        parsed_by_pyyaml = _seen(path)
    finally:
        del os.environ["LUTE_NO_PARSE_CACHE"]
    first = _seen(path)  # parses and keeps
    assert _entries()
    second = _seen(path)  # reads it back
    assert first == second == parsed_by_pyyaml


def test_a_fresh_interpreter_reads_a_kept_config_without_importing_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, {"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}}})
    code = (
        "import sys; from lute_kernel.config import load_config;"
        f" c = load_config({str(path)!r}, env={{}}); print(c.section('Test'), 'yaml' in sys.modules)"
    )
    env = {**os.environ}
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO) for _ in "ab"
    ]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert runs[0].stdout.split()[-1] == "True"  # the first parses with PyYAML
    assert runs[1].stdout.split()[-1] == "False"  # the second reads the kept parse
    assert runs[0].stdout.rsplit(" ", 1)[0] == runs[1].stdout.rsplit(" ", 1)[0]


@pytest.mark.parametrize(
    "body",
    [
        "Test:\n  when: 2026-01-01\n",
        "Test:\n  at: 2026-01-01 10:00:00\n",
        "Test:\n  1: one\n",
        "Test:\n  ~: none\n",
    ],
    ids=["date", "datetime", "int-key", "null-key"],
)
def test_what_json_cannot_carry_back_is_parsed_every_time(tmp_path: Path, body: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("---\n" + yaml.safe_dump(HEADER) + "...\n---\n" + body + "...\n")
    first, second = _seen(path), _seen(path)
    assert first == second
    assert _entries() == []


def test_an_error_is_pyyamls_every_time_and_nothing_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("---\n" + yaml.safe_dump(HEADER) + "...\n---\nTest: [unclosed\n...\n")
    messages = []
    for _ in range(2):
        with pytest.raises(ConfigError) as caught:
            load_config(path, env={})
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and "not valid YAML" in messages[0]
    assert _entries() == []


def test_an_edited_file_is_parsed_again(tmp_path: Path) -> None:
    path = _write(tmp_path, {"Test": {"n": 1}})
    assert _seen(path)["sections"] == {"Test": {"n": 1}}
    path = _write(tmp_path, {"Test": {"n": 2}})
    assert _seen(path)["sections"] == {"Test": {"n": 2}}
    assert len(_entries()) == 2


@pytest.mark.parametrize(
    "damage", ["not json", '{"format": 1}', '{"format": 99, "value": []}', '{"format": 1, "value": 3}']
)
def test_a_damaged_entry_is_a_miss(tmp_path: Path, damage: str) -> None:
    path = _write(tmp_path, {"Test": {"n": 1}})
    good = _seen(path)
    [entry] = _entries()
    Path(parse_cache.cache_dir(), entry).write_text(damage)
    assert _seen(path) == good


def test_another_pyyaml_or_parser_is_another_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, {"Test": {"n": 1}})
    _seen(path)
    monkeypatch.setattr(parse_cache, "_pyyaml_stamp", lambda: "elsewhere:1:2")
    _seen(path)
    assert len(_entries()) == 2
    monkeypatch.setattr(parse_cache, "_pyyaml_stamp", lambda: None)  # no plain PyYAML found: nothing kept
    _seen(path)
    assert len(_entries()) == 2


def test_the_folder_keeps_the_most_recently_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse_cache, "MAX_ENTRIES", 3)
    for n in range(5):
        parse_cache.store("test", f"text {n}", {"n": n})
    assert len(_entries()) == 3
    assert parse_cache.load("test", "text 4") == {"n": 4}
    assert parse_cache.load("test", "text 0") is None
    assert os.stat(parse_cache.cache_dir()).st_mode & 0o077 == 0


def test_turned_off_nothing_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUTE_NO_PARSE_CACHE", "1")
    _seen(_write(tmp_path, {"Test": {"n": 1}}))
    assert _entries() == []
