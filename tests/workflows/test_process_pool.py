"""The process work pool a deployment needs is made once, whoever makes it first (a starting worker, a deploy)."""

from __future__ import annotations

import sys
import types
from typing import Any, Dict, Iterator, List

import pytest

from flows.deployments import ensure_process_pool


class _NotFound(Exception):
    pass


class _Exists(Exception):
    pass


class _Client:
    """A Prefect client whose pool appears between the read and the create, as in a race."""

    def __init__(self, calls: List[str], pools: Dict[str, str], race: bool) -> None:
        self.calls, self.pools, self.race = calls, pools, race

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def read_work_pool(self, name: str) -> Any:
        self.calls.append("read")
        if name not in self.pools:
            if self.race:
                self.pools[name] = "process"  # someone else makes it now
            raise _NotFound(name)
        return types.SimpleNamespace(type=self.pools[name])

    def create_work_pool(self, spec: Any) -> None:
        self.calls.append("create")
        if spec.name in self.pools:
            raise _Exists(spec.name)
        self.pools[spec.name] = spec.type


@pytest.fixture
def fake_prefect(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dict[str, Any]]:
    state: Dict[str, Any] = {"calls": [], "pools": {}, "race": False}
    modules = {
        "prefect.client.orchestration": {
            "get_client": lambda sync_client: _Client(state["calls"], state["pools"], state["race"])
        },
        "prefect.client.schemas.actions": {
            "WorkPoolCreate": lambda name, type: types.SimpleNamespace(name=name, type=type)
        },
        "prefect.exceptions": {"ObjectNotFound": _NotFound, "ObjectAlreadyExists": _Exists},
    }
    for name, attrs in modules.items():
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(**attrs))
    yield state


def test_a_missing_pool_is_made(fake_prefect: Dict[str, Any]) -> None:
    assert ensure_process_pool("lute") is True
    assert fake_prefect["pools"] == {"lute": "process"}


def test_a_pool_made_meanwhile_is_used(fake_prefect: Dict[str, Any]) -> None:
    fake_prefect["race"] = True
    assert ensure_process_pool("lute") is False
    assert fake_prefect["calls"] == ["read", "create", "read"]


def test_a_pool_of_another_type_is_refused(fake_prefect: Dict[str, Any]) -> None:
    fake_prefect["pools"]["lute"] = "kubernetes"
    with pytest.raises(ValueError, match="kubernetes"):
        ensure_process_pool("lute")
