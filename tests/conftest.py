"""Shared fixtures: a writable work_dir, config files in the upstream format, the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Generator, List, Optional

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TEST_TASKS = REPO / "tests" / "tasks"
UPSTREAM_CONFIGS = REPO.parent / "shared" / "upstream-configs"


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def write_config(path: Path, header: Dict[str, Any], sections: Dict[str, Any]) -> Path:
    """Write a two-document config in the upstream layout."""
    text = "%YAML 1.3\n---\n" + yaml.safe_dump(header, sort_keys=False) + "...\n---\n"
    text += yaml.safe_dump(sections, sort_keys=False) if sections else ""
    text += "...\n"
    path.write_text(text)
    return path


@pytest.fixture
def make_config(tmp_path: Path, work_dir: Path) -> Callable[..., Path]:
    """Return a factory: make_config(sections, **header_overrides) -> config path."""
    counter = iter(range(1000))

    def factory(sections: Optional[Dict[str, Any]] = None, **header: Any) -> Path:
        base = {
            "title": "test",
            "experiment": "xpptut15",
            "run": 14,
            "date": "2026/11/22",
            "lute_version": 0.1,
            "task_timeout": 60,
            "work_dir": str(work_dir),
        }
        base.update(header)
        return write_config(tmp_path / f"config{next(counter)}.yaml", base, sections or {})

    return factory


@pytest.fixture
def cli_env(tmp_path: Path) -> Dict[str, str]:
    """Environment for CLI subprocesses: the test-only Tasks are discoverable."""
    env = dict(os.environ)
    env["LUTE_TASKS_PATH"] = str(TEST_TASKS)
    env.pop("LUTE_SITE", None)
    return env


def run_cli(*args: str, env: Optional[Dict[str, str]] = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``lute-kernel ARGS`` as a subprocess and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "lute_kernel.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=REPO,
    )


# --- The reliability suite (tests/reliability): its marker and its figures table -------------------
sys.path.insert(0, str(Path(__file__).parent / "reliability"))
sys.path.insert(0, str(Path(__file__).parent / "integration"))  # e2e helpers, shared with the reliability suite
import figures  # noqa: E402  (tests/reliability/figures.py)

RELIABILITY_DIR = Path(__file__).resolve().parent / "reliability"
INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    """Every test under tests/reliability carries the ``reliability`` marker (``just reliability``), and
    every test under tests/integration the ``integration`` one (``just test-unit`` leaves them out)."""
    for item in items:
        parents = Path(str(item.fspath)).resolve().parents
        if RELIABILITY_DIR in parents:
            item.add_marker(pytest.mark.reliability)
        if INTEGRATION_DIR in parents:
            item.add_marker(pytest.mark.integration)


def pytest_sessionstart(session: pytest.Session) -> None:
    if not os.environ.get(figures.ENV):
        fd, path = tempfile.mkstemp(prefix="lute-reliability-", suffix=".jsonl")
        os.close(fd)
        os.environ[figures.ENV] = path  # subprocesses of the tests add their figures too


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("figure")
    if marker is not None and report.when == "call":
        figures.record(str(marker.args[0]), 1, int(report.passed), item.name)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    path = os.environ.get(figures.ENV)
    text = figures.table(Path(path)) if path else ""
    if text:
        terminalreporter.write_sep("=", "reliability figures (tests/reliability)")
        terminalreporter.write_line(text)


def json_values(max_int: int = 2**70, max_leaves: int = 8) -> Any:
    """Generated JSON-like values (None, bools, ints, finite floats, text; lists and str-keyed dicts of them)."""
    from hypothesis import strategies as st

    leaf = st.one_of(
        st.none(), st.booleans(), st.integers(-max_int, max_int), st.floats(allow_nan=False), st.text(max_size=12)
    )
    keys = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
    return st.recursive(
        leaf,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
        max_leaves=max_leaves,
    )
