"""Parses remembered by text (``lute_kernel.parse_memo``): off by default, never stale, never shared."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lute_kernel import parse_memo
from lute_kernel.config.loader import load_config
from lute_kernel.parse_memo import fresh, parsed


@pytest.fixture(autouse=True)
def _memo_off_after() -> Iterator[None]:
    yield
    parse_memo.disable()


def _counting(value: Any, calls: List[int]) -> Any:
    def parse() -> Any:
        calls.append(1)
        return value

    return parse


def test_off_by_default_every_call_parses() -> None:
    calls: List[int] = []
    for _ in range(3):
        parsed(("k",), _counting({"a": 1}, calls))
    assert len(calls) == 3


def test_on_the_same_key_parses_once_and_each_caller_gets_its_own_copy() -> None:
    parse_memo.enable()
    calls: List[int] = []
    first = parsed(("k",), _counting({"a": [1, 2]}, calls))
    first["a"].append(3)  # a caller changing its copy
    second = parsed(("k",), _counting({"a": [1, 2]}, calls))
    assert second == {"a": [1, 2]} and len(calls) == 1
    second["a"].clear()
    assert parsed(("k",), _counting(None, calls)) == {"a": [1, 2]}


def test_errors_are_not_remembered() -> None:
    parse_memo.enable()
    calls: List[int] = []

    def broken() -> Any:
        calls.append(1)
        raise ValueError("bad")

    for _ in range(2):
        with pytest.raises(ValueError):
            parsed(("bad",), broken)
    assert len(calls) == 2


def test_at_most_max_entries_are_kept() -> None:
    parse_memo.enable()
    calls: List[int] = []
    for key in range(parse_memo.MAX_ENTRIES + 1):
        parsed((key,), _counting(key, calls))
    parsed((0,), _counting(0, calls))  # the oldest was dropped
    assert len(calls) == parse_memo.MAX_ENTRIES + 2


def test_an_edited_config_is_parsed_again(tmp_path: Path) -> None:
    parse_memo.enable()
    config = tmp_path / "c.yaml"
    header = f"work_dir: {tmp_path}\n---\n"
    config.write_text(header + "Test:\n  str_var: one\n")
    loaded = load_config(config)
    loaded.raw_sections["Test"]["str_var"] = "changed by a caller"
    assert load_config(config).raw_sections["Test"] == {"str_var": "one"}
    config.write_text(header + "Test:\n  str_var: two\n")
    assert load_config(config).raw_sections["Test"] == {"str_var": "two"}


_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.dates(),
    st.datetimes(timezones=st.just(datetime.timezone.utc)),
)
_trees = st.recursive(
    _leaves | st.frozensets(st.integers(), max_size=3).map(set),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=30,
)


def _containers(value: Any) -> Iterator[int]:
    if isinstance(value, (dict, list, set)):
        yield id(value)
    if isinstance(value, dict):
        for item in value.values():
            yield from _containers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _containers(item)


@given(_trees)
def test_fresh_copies_are_equal_and_share_no_container(tree: Any) -> None:
    copy = fresh(tree)
    assert copy == tree
    assert not set(_containers(copy)) & set(_containers(tree))
