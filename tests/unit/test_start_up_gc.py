"""The collector is held off only during a ``run``'s start-up: on again before any Task code, whatever happened."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Callable, Iterator

import pytest

from lute_kernel.cli import start_up_gc
from lute_kernel.cli.run_cmd import run_and_report


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    yield
    start_up_gc.release()
    gc.enable()
    gc.unfreeze()


def test_hold_turns_it_off_and_release_freezes_start_up_and_turns_it_on() -> None:
    start_up_gc.hold()
    assert not gc.isenabled()
    start_up_gc.release()
    assert gc.isenabled() and gc.get_freeze_count() > 0
    start_up_gc.release()  # once only
    assert gc.isenabled()


def test_a_collector_someone_else_turned_off_stays_off() -> None:
    gc.disable()
    start_up_gc.hold()
    start_up_gc.release()
    assert not gc.isenabled()


@pytest.mark.parametrize("section", [{"sleep_secs": 0}, {"compound_var": {"int_var": "x"}}], ids=["runs", "bad-input"])
def test_a_run_turns_it_on_again_before_launch_and_after_bad_input(
    make_config: Callable[..., Path], section: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lute_kernel.api as api

    seen = []
    real = api.run_prepared
    monkeypatch.setattr(api, "run_prepared", lambda *a, **k: (seen.append(gc.isenabled()), real(*a, **k))[1])
    config = make_config({"Test": {"compound_var": {"int_var": 1}, **section}})
    start_up_gc.hold()
    code = run_and_report("Test", config)
    assert gc.isenabled()
    assert (code, seen) == ((0, [True]) if "sleep_secs" in section else (2, []))
