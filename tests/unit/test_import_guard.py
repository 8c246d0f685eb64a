"""Task modules that misbehave at import (lute_kernel.import_guard, lute_kernel.registry): recorded, never fatal."""

from __future__ import annotations

import signal
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, List, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lute_kernel.import_guard import DEFAULT_IMPORT_TIMEOUT_S, ImportTimedOut, deadline, guarded, import_timeout
from lute_kernel.registry import discover

GOOD = "from lute_kernel.task import Task\nclass StillHere(Task):\n    pass\n"

MISBEHAVING = {
    "exit0": ("import sys\nsys.exit(0)\n", "SystemExit: the module called sys.exit(0) at import"),
    "exit_text": ("import sys\nsys.exit('bye')\n", "SystemExit: the module called sys.exit('bye') at import"),
    "base": ("class Odd(BaseException):\n    pass\nraise Odd('odd')\n", "Odd: odd"),
    "generator_exit": ("raise GeneratorExit('gen')\n", "GeneratorExit: gen"),
    "recursion": ("def f():\n    return f()\nf()\n", "RecursionError: maximum recursion depth exceeded"),
}

HANGS = {
    "sleeps": "import time\ntime.sleep(3600)\n",
    "spins": "while True:\n    pass\n",
    "swallows_exception": textwrap.dedent(
        """\
        import time
        while True:
            try:
                time.sleep(3600)
            except Exception:
                pass
        """
    ),
}


def tasks_folder(tmp_path: Path, modules: dict[str, str]) -> Path:
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "good.py").write_text(GOOD)
    for name, text in modules.items():
        (folder / f"{name}.py").write_text(text)
    return folder


def errors_by_module(registry: Any) -> dict[str, str]:
    return {Path(f.source).stem: f.error for f in registry.failures}


def test_exits_and_base_exceptions_at_import_are_recorded(tmp_path: Path) -> None:
    folder = tasks_folder(tmp_path, {name: text for name, (text, _) in MISBEHAVING.items()})
    registry = discover([folder], entry_points=False)
    assert set(registry.tasks) == {"StillHere"}
    found = errors_by_module(registry)
    for name, (_, error) in MISBEHAVING.items():
        assert found[name].startswith(error), (name, found[name])


@given(code=st.one_of(st.none(), st.integers(), st.text(max_size=20), st.booleans()))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_sys_exit_value_at_import_is_recorded(tmp_path: Path, code: Any) -> None:
    folder = tmp_path / f"t{abs(hash(repr(code)))}"
    if not folder.exists():
        folder.mkdir()
        (folder / "good.py").write_text(GOOD)
        (folder / "quits.py").write_text(f"import sys\nsys.exit({code!r})\n")
    registry = discover([folder], entry_points=False)
    assert set(registry.tasks) == {"StillHere"}
    assert errors_by_module(registry)["quits"] == f"SystemExit: the module called sys.exit({code!r}) at import"


@pytest.mark.parametrize("name", sorted(HANGS))
def test_a_module_that_hangs_at_import_times_out_and_hides_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("LUTE_TASK_IMPORT_TIMEOUT", "0.3")
    folder = tasks_folder(tmp_path, {name: HANGS[name]})
    registry = discover([folder], entry_points=False)
    assert set(registry.tasks) == {"StillHere"}
    assert errors_by_module(registry)[name].startswith(
        f"hung at import: {folder / (name + '.py')} took longer than 0.3 s"
    )


def test_keyboard_interrupt_at_import_still_aborts(tmp_path: Path) -> None:
    folder = tasks_folder(tmp_path, {"ctrl_c": "raise KeyboardInterrupt\n"})
    with pytest.raises(KeyboardInterrupt):
        discover([folder], entry_points=False)


def test_a_broken_package_init_is_recorded_and_not_left_half_imported(tmp_path: Path) -> None:
    folder = tasks_folder(tmp_path, {"__init__": "import sys\nsys.exit(3)\n"})
    for _ in range(2):  # the second discovery must fail the same way, not find a half-run package
        registry = discover([folder], entry_points=False)
        assert registry.tasks == {}
        assert errors_by_module(registry)["good"] == "SystemExit: the module called sys.exit(3) at import"


@given(raw=st.text(max_size=12))
@settings(max_examples=60, deadline=None)
def test_any_timeout_setting_gives_a_limit_and_a_clear_problem(raw: str) -> None:
    seconds, problem = import_timeout({"LUTE_TASK_IMPORT_TIMEOUT": raw})
    assert 0 <= seconds < 1e6
    if problem:
        assert seconds == DEFAULT_IMPORT_TIMEOUT_S and "LUTE_TASK_IMPORT_TIMEOUT" in problem


def test_timeout_settings() -> None:
    assert import_timeout({}) == (DEFAULT_IMPORT_TIMEOUT_S, "")
    assert import_timeout({"LUTE_TASK_IMPORT_TIMEOUT": "2.5"}) == (2.5, "")
    assert import_timeout({"LUTE_TASK_IMPORT_TIMEOUT": "0"}) == (0.0, "")
    for bad in ("abc", "-1", "nan", "inf", "1e400"):
        seconds, problem = import_timeout({"LUTE_TASK_IMPORT_TIMEOUT": bad})
        assert seconds == DEFAULT_IMPORT_TIMEOUT_S and problem.startswith(f"LUTE_TASK_IMPORT_TIMEOUT={bad!r}")


def test_a_bad_timeout_setting_is_reported_by_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUTE_TASK_IMPORT_TIMEOUT", "soon")
    registry = discover([tasks_folder(tmp_path, {})], entry_points=False)
    assert set(registry.tasks) == {"StillHere"}
    assert [(f.source, f.error.split(";")[0]) for f in registry.failures] == [
        ("environment", "LUTE_TASK_IMPORT_TIMEOUT='soon' is not a number of seconds (0 for no limit)")
    ]


def test_off_the_main_thread_there_is_no_alarm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUTE_TASK_IMPORT_TIMEOUT", "0.05")
    folder = tasks_folder(tmp_path, {"slow": "import time\ntime.sleep(0.3)\n" + GOOD.replace("StillHere", "Slow")})
    found: List[Any] = []
    thread = threading.Thread(target=lambda: found.append(discover([folder], entry_points=False)))
    thread.start()
    thread.join(timeout=60)
    assert set(found[0].tasks) == {"StillHere", "Slow"}


def test_the_deadline_leaves_the_timer_and_the_handler_as_they_were() -> None:
    before = signal.getsignal(signal.SIGALRM)
    timer_before, _ = signal.getitimer(signal.ITIMER_REAL)  # pytest-timeout's, or none
    assert guarded(lambda: 42, "x", 5.0) == (42, "")
    timer_after, _ = signal.getitimer(signal.ITIMER_REAL)
    assert (timer_after == 0.0) if timer_before == 0.0 else (0 < timer_before - timer_after < 1.0)
    assert signal.getsignal(signal.SIGALRM) is before


def test_another_alarm_user_keeps_its_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    fired: List[float] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(time.monotonic()))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        assert guarded(lambda: "ok", "x", 5.0) == ("ok", "")
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25.0 < left <= 30.0  # re-armed with what was left of it
        signal.setitimer(signal.ITIMER_REAL, 0.05)  # theirs comes first: their handler runs, the import goes on
        value, problem = guarded(lambda: (time.sleep(0.3), "slept")[1], "y", 5.0)
        assert (value, problem) == ("slept", "") and len(fired) == 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_what_another_alarm_handler_raises_goes_on_untouched() -> None:
    class TheirTimeout(BaseException):
        pass

    def theirs(signum: int, frame: Optional[Any]) -> None:
        raise TheirTimeout

    previous = signal.signal(signal.SIGALRM, theirs)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(TheirTimeout):
            guarded(lambda: time.sleep(5), "z", 10.0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_deadline_raises_in_the_block() -> None:
    with pytest.raises(ImportTimedOut, match=r"took longer than 0\.05 s"), deadline(0.05, "block"):
        time.sleep(5)
