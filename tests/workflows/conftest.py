"""Fixtures of the flow tests: DAG and config files, the CLI's environment, one real Prefect server per session.

The server (marker ``prefect``) is ``prefect server start`` on 127.0.0.1 and a free port, with its
own PREFECT_HOME, started the first time a test asks for it and stopped at the end of the session.
Every flow test runs ``lute-kernel flow …`` as a subprocess against it (PREFECT_API_URL), with
TMPDIR set to an empty folder of its own, so the processes a run started can be found afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import pytest

from workflows.flow_helpers import FLOW_TASKS, PREFECT_ENV, REPO, TEST_TASKS, write_dag


@pytest.fixture
def dag_file(tmp_path: Path) -> Callable[[str], Path]:
    """Return a factory: dag_file(text) -> path of a new DAG file."""
    counter = iter(range(1000))
    return lambda text: write_dag(tmp_path / f"dag{next(counter)}.yaml", text)


@pytest.fixture
def flow_config(make_config: Callable[..., Path]) -> Callable[..., Path]:
    """A config with quick sections for the test Tasks; ``flow_config(extra_sections, **header)``."""

    def factory(extra: Optional[Dict[str, Any]] = None, *, drop: Tuple[str, ...] = (), **header: Any) -> Path:
        sections: Dict[str, Any] = {
            "Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}, "str_var": "run {{ run }} of {{ experiment }}"},
            "TestSocket": {"array_size": 10, "num_arrays": 2},
            "TestWriteOutput": {"outfile_name": "out_r{{ run }}.txt", "num_vals": 5},
            "TestReadOutput": {},
            "TestBinary": {"executable": str(REPO / "tasks" / "bin" / "test_threads"), "p_arg1": 1},
            "TestBinaryErr": {"executable": str(REPO / "tasks" / "bin" / "test_threads_err"), "p_arg1": 1},
        }
        sections.update(extra or {})
        return make_config({k: v for k, v in sections.items() if k not in drop}, **header)

    return factory


@pytest.fixture
def tasks_env(cli_env: Dict[str, str]) -> Dict[str, str]:
    """The CLI's environment with the test-only Tasks (tests/tasks, tests/workflows/tasks)."""
    return {**cli_env, "LUTE_TASKS_PATH": os.pathsep.join([str(TEST_TASKS), str(FLOW_TASKS)])}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, str]]:
    """One real Prefect server for the whole session; yields the environment that points at it."""
    pytest.importorskip("prefect")
    import requests

    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {**os.environ, **PREFECT_ENV, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "wb")  # noqa: SIM115 - open for the whole session
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180  # a loaded 2-CPU machine: the server's start-up takes its time
    while True:
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"the Prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)  # polling a server that is starting: it offers nothing to wait on
    yield {**PREFECT_ENV, "PREFECT_HOME": str(home), "PREFECT_API_URL": url}
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    log.close()


@pytest.fixture
def flow_env(prefect_server: Dict[str, str], tasks_env: Dict[str, str], tmp_path: Path) -> Dict[str, str]:
    """Environment of a `lute-kernel flow` subprocess: the session's server, test Tasks, a private TMPDIR."""
    from e2e import isolated_env

    env = isolated_env(tasks_env, tmp_path / "tmp", **prefect_server)
    env.pop("LUTE_FLOW_NODE_SERVER", None)
    return env
