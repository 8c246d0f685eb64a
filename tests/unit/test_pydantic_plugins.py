"""`lute_kernel.pydantic_plugins`: pydantic skips its plugin search only when the kernel knows none is installed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Tuple

import pytest

import lute_kernel.task_index as task_index
from lute_kernel.pydantic_plugins import SWITCH, skip_search_when_none_installed


@pytest.fixture
def no_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The switch unset, and whatever the code under test sets undone afterwards."""
    monkeypatch.setenv(SWITCH, "")
    monkeypatch.delenv(SWITCH)


def with_entry_points(monkeypatch: pytest.MonkeyPatch, found: List[Tuple[str, str]]) -> List[str]:
    asked: List[str] = []
    monkeypatch.setattr(task_index, "cached_entry_points", lambda group: asked.append(group) or found)
    return asked


def test_no_plugin_installed_means_no_search(monkeypatch: pytest.MonkeyPatch, no_switch: None) -> None:
    asked = with_entry_points(monkeypatch, [])
    skip_search_when_none_installed()
    assert asked == ["pydantic"]
    assert os.environ[SWITCH] == "__all__"


def test_an_installed_plugin_is_still_searched_for_and_loaded(monkeypatch: pytest.MonkeyPatch, no_switch: None) -> None:
    with_entry_points(monkeypatch, [("logfire", "logfire.integrations.pydantic:plugin")])
    skip_search_when_none_installed()
    assert SWITCH not in os.environ


def test_the_users_own_value_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH, "logfire")
    asked = with_entry_points(monkeypatch, [])
    skip_search_when_none_installed()
    assert os.environ[SWITCH] == "logfire" and asked == []


def test_the_real_cache_answers_for_this_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    from importlib.metadata import entry_points

    expected = sorted((e.name, e.value) for e in entry_points(group="pydantic"))
    assert sorted(task_index.cached_entry_points("pydantic")) == expected
