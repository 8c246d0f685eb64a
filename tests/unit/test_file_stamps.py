"""`lute_kernel.file_stamps`: a stamp is trusted only once its file has been quiet for a while.

Every cache keyed by size and mtime (the task index, the catalogue, the listing, the warm kernel's
fingerprint, the viewer's signature) follows this rule, so a file written twice within one tick of
the file clock is never taken for unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lute_kernel.file_stamps import RACY_NS, settled

NOW = 1_800_000_000 * 10**9


@given(st.lists(st.one_of(st.none(), st.integers(NOW - 10 * RACY_NS, NOW + 10 * RACY_NS)), max_size=8))
def test_settled_means_every_file_is_quiet(mtimes: list[Optional[int]]) -> None:
    expected = all(m is None or abs(NOW - m) >= RACY_NS for m in mtimes)
    assert settled(mtimes, NOW) is expected


def test_a_file_just_written_is_not_settled_and_becomes_so(tmp_path: Path) -> None:
    path = tmp_path / "f.py"
    path.write_text("x = 1\n")
    mtime = path.stat().st_mtime_ns
    assert not settled([mtime], mtime + 1)
    assert settled([mtime], mtime + RACY_NS)
    os.utime(path, ns=(mtime, mtime - 10 * RACY_NS))
    assert settled([path.stat().st_mtime_ns])


def test_a_task_module_written_this_tick_is_parsed_again_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lute_kernel.task_index as task_index

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    module = tmp_path / "fresh_task.py"
    module.write_text("class A:\n    pass\n")
    written = module.stat().st_mtime_ns
    with monkeypatch.context() as clock:  # the lookup runs within the tick the module was written in
        clock.setattr(task_index, "time", SimpleNamespace(time_ns=lambda: written + 1))
        first = task_index._Cache()
        assert [c.name for c in first.facts(module) or []] == ["A"]
        assert str(module) not in first.files  # too fresh to be cached
        module.write_text("class B:\n    pass\n")  # same size, and here the same time
        os.utime(module, ns=(written, written))
        assert [c.name for c in task_index._Cache().facts(module) or []] == ["B"]
    old = module.stat().st_mtime_ns - 10 * RACY_NS
    os.utime(module, ns=(old, old))
    settled_cache = task_index._Cache()
    assert [c.name for c in settled_cache.facts(module) or []] == ["B"]
    assert str(module) in settled_cache.files


def test_a_warm_kernel_does_not_trust_the_time_of_a_file_written_this_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types

    import lute_kernel.file_stamps as file_stamps
    from lute_kernel.warm.freshness import UNTRUSTED, changed, fingerprint

    path = tmp_path / "fresh_module.py"
    path.write_text("")
    written = path.stat().st_mtime_ns
    module = types.ModuleType("fresh_module_for_stamps")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module
    try:
        with monkeypatch.context() as clock:
            clock.setattr(file_stamps, "time", SimpleNamespace(time_ns=lambda: written + 1))
            snapshot = fingerprint()
        assert snapshot[str(path)] == UNTRUSTED and changed(snapshot) is not None
        old = written - 10 * RACY_NS
        os.utime(path, ns=(old, old))
        assert fingerprint()[str(path)] == old
    finally:
        del sys.modules[module.__name__]
