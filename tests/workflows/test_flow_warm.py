"""``flow run`` through the warm kernel of flows (``serve --flows``): the same flow as cold, Prefect already imported.

Each case runs warm and cold (``LUTE_WARM=0``) against the session's Prefect server and compares
the output, exit code and rows; a signal to a warm command cancels its flow as it cancels a cold
one; a command whose Prefect environment differs from the server's runs cold.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, NamedTuple

import pytest
from e2e import LiveRun, processes_marked, run_dirs, wait_gone

from workflows.flow_helpers import REPO, flow_cli, statuses
from workflows.test_prefect_local import SLEEPY, states

pytestmark = [pytest.mark.integration, pytest.mark.prefect]


def _lute(*args: str, env: Dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lute_kernel.cli", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )


def _status(env: Dict[str, str]) -> Dict[str, object]:
    done = _lute("serve", "--flows", "--status", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


class WarmFlows(NamedTuple):
    env: Dict[str, str]
    """The environment of its commands."""
    pid: int


@pytest.fixture
def warm_flows(flow_env: Dict[str, str], tmp_path: Path) -> Iterator[WarmFlows]:
    """A serving warm kernel of flows (its own private directory)."""
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    env = {**flow_env, "XDG_RUNTIME_DIR": str(runtime)}
    started = _lute("serve", "--flows", "--detach", "--idle-timeout", "300", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    pid = int(str(_status(env)["pid"]))
    yield WarmFlows(env, pid)
    _lute("serve", "--flows", "--stop", env=env)
    assert wait_gone(pid, 60), "the warm kernel of flows did not stop"


def _no_leftovers(server: WarmFlows) -> None:
    """No run directory and no process of the test's TMPDIR left, but the server itself."""
    tmpdir = Path(server.env["TMPDIR"])
    assert run_dirs(tmpdir) == [], f"run directories left in {tmpdir}"
    marked = [pid for pid in processes_marked(f"TMPDIR={tmpdir}\0") if pid != server.pid]
    assert [pid for pid in marked if not wait_gone(pid)] == [], "processes left running"


def _normal(text: str) -> str:
    """Output with what differs between two runs of one flow (times, row ids, Prefect's busy notes) blanked."""
    # Prefect says how many events it still had to send at exit when the machine is busy: timing, not output.
    text = re.sub(r"(?m)^.*\| EventsWorker - Still processing items.*\n?", "", text)
    text = re.sub(r"\d+\.\d+ s\b", "T s", text)
    text = re.sub(r"row \d+", "row N", text)
    return re.sub(r"│ +[0-9.]+ +│ +\d+ +│", "│ T │ N │", text)


CHAIN = """\
!LUTE_DAG
task_name: Tester
next:
- task_name: WriteTester
  next:
  - task_name: ReadTester
"""


@pytest.mark.parametrize("fails", [False, True], ids=["completes", "a-step-fails"])
def test_a_warm_flow_run_is_the_cold_one(
    fails: bool,
    warm_flows: WarmFlows,
    dag_file: Callable[[str], Path],
    flow_config: Callable[..., Path],
    work_dir: Path,
) -> None:
    dag = dag_file(CHAIN)
    config = flow_config({"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}, "throw_error": fails}})
    cold = flow_cli("run", str(dag), "-c", str(config), env={**warm_flows.env, "LUTE_WARM": "0"})
    warm = flow_cli("run", str(dag), "-c", str(config), env=warm_flows.env)
    assert _status(warm_flows.env)["served"] == 1
    assert warm.returncode == cold.returncode == (1 if fails else 0), warm.stdout + warm.stderr
    assert _normal(warm.stdout) == _normal(cold.stdout)
    assert _normal(warm.stderr) == _normal(cold.stderr)
    first = "FAILED" if fails else "COMPLETED"
    assert statuses(work_dir, "Test") == [first, first]
    assert states(warm.stdout) == states(cold.stdout)
    assert states(warm.stdout)["Tester"] == first
    _no_leftovers(warm_flows)


def test_a_signal_to_a_warm_flow_cancels_it_as_cold(
    warm_flows: WarmFlows, dag_file: Callable[[str], Path], flow_config: Callable[..., Path], work_dir: Path
) -> None:
    config = flow_config({"FaultSleep": {"seconds": 120, "spawn_child": True}})
    with LiveRun("flow", "run", str(dag_file(SLEEPY)), "-c", str(config), env=warm_flows.env) as live:
        live.wait_for("child pid", timeout=120)
        live.wait_for("sleeping", timeout=60)
        child = int(next(line for _, _, line in live.lines if "child pid" in line).split()[-1])
        live.proc.send_signal(signal.SIGINT)
        code, stdout, stderr = live.finish(timeout=120)
    assert _status(warm_flows.env)["served"] == 1
    assert code == 1, stdout + stderr
    assert states(stdout) == {"Tester": "COMPLETED", "FaultSleep": "CANCELLED", "SocketTester": "CANCELLED"}
    assert statuses(work_dir, "FaultSleep") == ["CANCELLED"]
    assert wait_gone(child, 30), "the Task's child outlived the flow"
    _no_leftovers(warm_flows)


def test_a_command_with_another_prefect_environment_runs_cold(
    warm_flows: WarmFlows, dag_file: Callable[[str], Path], flow_config: Callable[..., Path]
) -> None:
    dag = dag_file("!LUTE_DAG\ntask_name: Tester\n")
    other = {**warm_flows.env, "PREFECT_LOGGING_LEVEL": "WARNING"}  # read by `import prefect`: not the server's
    done = flow_cli("run", str(dag), "-c", str(flow_config()), env=other)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _status(warm_flows.env)["served"] == 0


LATE = """
import os, sys
from lute_kernel.warm.address import FLOWS
from lute_kernel.warm.server import FLOW_PRELOAD, preload
preload(FLOWS)
missing = [name for name in FLOW_PRELOAD if name not in sys.modules]
before = set(sys.modules)
sys.argv = ["lute-kernel", "flow", "run", *sys.argv[1:]]
from lute_kernel.cli import command_code
null = os.open(os.devnull, os.O_WRONLY)
kept = os.dup(1)
os.dup2(null, 1)
code = command_code()
os.dup2(kept, 1)
late = sorted(m for m in set(sys.modules) - before if not m.startswith("lute_tasks_"))  # Task modules: never preloaded
print("CODE", code, "MISSING", missing, "LATE", late)
"""


def test_a_flows_server_has_imported_what_a_flow_run_imports(
    flow_env: Dict[str, str], dag_file: Callable[[str], Path], flow_config: Callable[..., Path]
) -> None:
    dag = dag_file("!LUTE_DAG\ntask_name: Tester\n")
    done = subprocess.run(
        [sys.executable, "-c", LATE, str(dag), "-c", str(flow_config()), "--backend", "local"],
        capture_output=True,
        text=True,
        env={**flow_env, "LUTE_WARM": "0"},
        cwd=REPO,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "CODE 0 MISSING [] LATE []"


def test_lute_warm_auto_starts_the_warm_kernel_of_flows_for_the_next_flow(
    flow_env: Dict[str, str], dag_file: Callable[[str], Path], flow_config: Callable[..., Path], tmp_path: Path
) -> None:
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    env = {**flow_env, "XDG_RUNTIME_DIR": str(runtime), "LUTE_WARM": "auto"}
    dag, config = dag_file("!LUTE_DAG\ntask_name: Tester\n"), flow_config()
    first = flow_cli("run", str(dag), "-c", str(config), env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    deadline = time.monotonic() + 120  # started by the first command, after it: Prefect's import takes its time
    while _lute("serve", "--flows", "--status", env=env).returncode != 0:
        assert time.monotonic() < deadline, "LUTE_WARM=auto started no warm kernel of flows"
    pid = int(str(_status(env)["pid"]))
    try:
        second = flow_cli("run", str(dag), "-c", str(config), env=env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert _status(env)["served"] == 1
        assert _lute("serve", "--status", env=env).returncode == 1  # the `run` server is another one: not started
    finally:
        _lute("serve", "--flows", "--stop", env=env)
    assert wait_gone(pid, 60), "the warm kernel of flows did not stop"
