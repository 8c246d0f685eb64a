"""``lute-kernel flow run`` for real: one Prefect server per session, the local backend, real Tasks and lute.db.

Covers the upstream DAGs end to end (with the failing branch), a sweep (a row per combination),
every trigger rule with skip propagation, retries (new rows), cancellation by signal and through
Prefect's API (no process left, CANCELLED rows), and bad input (exit 2, nothing written).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List

import pytest
import requests
from e2e import LiveRun, assert_no_leftovers, wait_gone

from lute_kernel.flow_record import read_flow_records
from workflows.flow_helpers import REPO, UPSTREAM, flow_cli, rows, statuses

pytestmark = [pytest.mark.integration, pytest.mark.prefect]
needs_upstream = pytest.mark.skipif(not UPSTREAM.is_dir(), reason="../shared/upstream-configs is not here")


def table(stdout: str) -> Dict[str, List[str]]:
    """The final table of `flow run`: step -> [Task, state, seconds, row, note] (the progress column left out)."""
    found: Dict[str, List[str]] = {}
    last = None
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if not (line.startswith("│") and len(cells) == 7):
            last = None
            continue
        if cells[0]:
            last = cells[0]
            found[last] = [*cells[1:5], cells[6]]
        elif last is not None:  # a cell rich wrapped onto the next line (a narrow column): join it back
            found[last] = [f"{a} {b}".strip() for a, b in zip(found[last], [*cells[1:5], cells[6]])]
    return found


def states(stdout: str) -> Dict[str, str]:
    return {step: cells[1] for step, cells in table(stdout).items()}


def last_flow_run(env: Dict[str, str]) -> Dict[str, object]:
    url = env["PREFECT_API_URL"]
    found = requests.post(f"{url}/flow_runs/filter", json={"limit": 1, "sort": "START_TIME_DESC"}, timeout=10).json()
    return dict(found[0])


@needs_upstream
def test_the_upstream_basic_tests_dag_runs_with_its_failing_branch(flow_env: Dict[str, str], work_dir: Path) -> None:
    env = {**flow_env, "LUTE_WORK_DIR": str(work_dir), "LUTE_REPO": str(REPO)}
    dag, config = UPSTREAM / "functional_basic_tests_dag.yaml", REPO / "config" / "examples" / "test.yaml"
    result = flow_cli("run", str(dag), "-c", str(config), "-e", "xpptut15", "-r", "14", env=env)
    assert result.returncode == 1, result.stdout + result.stderr  # BinaryErrTester fails on purpose
    assert states(result.stdout) == {
        "Tester": "COMPLETED",
        "BinaryTester": "COMPLETED",
        "BinaryErrTester": "FAILED",
        "SocketTester": "COMPLETED",
        "WriteTester": "COMPLETED",
        "ReadTester": "COMPLETED",
    }
    for task, status in [("Test", "COMPLETED"), ("TestBinary", "COMPLETED"), ("TestBinaryErr", "FAILED")]:
        assert statuses(work_dir, task) == [status]
    assert statuses(work_dir, "TestReadOutput") == ["COMPLETED"]  # its in_file came from TestWriteOutput's row
    assert "[Tester] INFO    Test message 9" in result.stdout  # the Task's own lines, as they came
    assert "flow: Failed — 1 step(s) did not complete: BinaryErrTester" in result.stdout
    run = last_flow_run(env)
    assert run["state_type"] == "FAILED"
    logs = requests.post(
        f"{env['PREFECT_API_URL']}/logs/filter",
        json={"logs": {"flow_run_id": {"any_": [run["id"]]}}, "limit": 200},
        timeout=10,
    ).json()
    assert any(log["message"] == "Test message 9" and log["task_run_id"] for log in logs)
    assert_no_leftovers(Path(env["TMPDIR"]))
    # The flow's record (its DAG and how each step ended) is in the work_dir, and the report draws it.
    [record] = read_flow_records(work_dir)
    assert record.name == dag.name and record.status == "FAILED" and record.backend == "local"
    by_label = {step.label: step for step in record.steps}
    assert {label: step.state for label, step in by_label.items()} == states(result.stdout)
    assert by_label["Tester"].upstream == [] and by_label["Tester"].row == 1
    assert all(step.upstream for label, step in by_label.items() if label != "Tester")
    report = subprocess.run(
        [sys.executable, "-m", "lute_kernel.cli", "report", "-w", str(work_dir)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    page = (work_dir / "report.html").read_text()
    assert page.count("<tr data-step=") == 6 and '<a href="#run-TestBinaryErr-1">1</a>' in page


@needs_upstream
def test_the_param_generation_dag_records_a_row_per_combination(flow_env: Dict[str, str], work_dir: Path) -> None:
    env = {**flow_env, "LUTE_WORK_DIR": str(work_dir), "LUTE_REPO": str(REPO)}
    dag, config = UPSTREAM / "functional_param_generation_dag.yaml", REPO / "config" / "examples" / "test.yaml"
    result = flow_cli("run", str(dag), "-c", str(config), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    sweep = rows(work_dir, "TestSocket")
    assert sorted(r["num_arrays"] for r in sweep) == [5, 10, 15, 20]
    assert {r["result.task_status"] for r in sweep} == {"COMPLETED"}
    for row in sweep:  # each run recorded with its own config, so `lute-kernel rerun` repeats that combination
        config_text = Path(row["prov.config"]).read_text()
        assert f"num_arrays: {row['num_arrays']}" in config_text and "sweep run SocketTester_" in config_text
    assert list(states(result.stdout)) == [
        "Tester",
        "SocketTester_0",
        "SocketTester_1",
        "SocketTester_2",
        "SocketTester_3",
    ]


def assert_profiled(stderr: str, steps: int) -> None:
    """``flow run --profile``: each phase's median over the steps that ran, the Task's and the whole run's too."""
    assert f"lute-kernel profile: {steps} steps, the median of each phase" in stderr, stderr
    for phase in ("validation (config, parameters, plan)", "Task", "recording", "in all (validation to recording)"):
        assert re.search(rf"^  {re.escape(phase)} +[0-9.]+ ms  \([0-9]+ steps\)$", stderr, re.M), (phase, stderr)


RULES = """\
!LUTE_DAG
- task_name: Tester
  next:
  - task_name: BinaryErrTester
    next:
    - task_name: WriteTester
      next:
      - task_name: ReadTester
      - !ALL_COMPLETED {task_name: SocketTester}
      - !ALWAYS {task_name: Tester}
    - !ALL_FAILED {task_name: BinaryTester}
    - !ANY_FAILED {task_name: Tester}
    - !ANY_SUCCESS {task_name: SocketTester}
  - task_name: SocketTester
  - !ALL_SUCCESS {task_name: WriteTester}
  - task_name: PeakFinderXDS   # not shipped here: skipped with --allow-unknown
    next:
    - !ALL_COMPLETED {task_name: BinaryTester}
"""


def test_every_trigger_rule_and_skip_propagation(
    flow_env: Dict[str, str], dag_file: Callable[[str], Path], flow_config: Callable[..., Path], work_dir: Path
) -> None:
    dag = dag_file(RULES)
    result = flow_cli(
        "run", str(dag), "-c", str(flow_config()), "--max-parallel", "2", "--allow-unknown", "--profile", env=flow_env
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert states(result.stdout) == {
        "Tester": "COMPLETED",
        "BinaryErrTester": "FAILED",
        "WriteTester": "SKIPPED",  # ALL_SUCCESS after a failure
        "ReadTester": "SKIPPED",  # its upstream was skipped: skipped too
        "SocketTester": "COMPLETED",  # ALL_COMPLETED: its upstream ended (skipped)
        "Tester#2": "COMPLETED",  # ALWAYS
        "BinaryTester": "COMPLETED",  # ALL_FAILED
        "Tester#3": "COMPLETED",  # ANY_FAILED
        "SocketTester#2": "SKIPPED",  # ANY_SUCCESS: nothing upstream succeeded
        "SocketTester#3": "COMPLETED",  # a sibling of the failing branch
        "WriteTester#2": "COMPLETED",
        "PeakFinderXDS": "SKIPPED",
        "BinaryTester#2": "COMPLETED",  # ALL_COMPLETED after a skip
    }
    assert "[PeakFinderXDS] SKIPPED: unknown Task (--allow-unknown)" in result.stdout
    assert "[WriteTester] SKIPPED: ALL_SUCCESS, but BinaryErrTester FAILED" in result.stdout
    assert "[ReadTester] SKIPPED: ALL_SUCCESS, but WriteTester SKIPPED" in result.stdout
    assert len(rows(work_dir, "Test")) == 3 and statuses(work_dir, "TestWriteOutput") == ["COMPLETED"]
    assert_profiled(result.stderr, steps=9)  # those that ran (COMPLETED or FAILED)
    assert rows(work_dir, "TestReadOutput") == []


def test_retries_are_new_rows_and_a_nodes_own_retries_win(
    flow_env: Dict[str, str], dag_file: Callable[[str], Path], flow_config: Callable[..., Path], work_dir: Path
) -> None:
    dag = dag_file(  # one-run sweeps: each node counts its attempts in its own file
        """\
        !LUTE_DAG
        - !param_sweep
          task_name: FlakyTester
          param_matrix: {counter: [first.txt]}
        - !param_sweep
          task_name: FlakyTask
          retries: 0
          param_matrix: {counter: [second.txt]}
        """
    )
    config = flow_config({"FlakyTask": {"counter": "unused.txt", "failures": 2}})
    result = flow_cli("run", str(dag), "-c", str(config), "--retries", "2", "--retry-delay", "0", env=flow_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert states(result.stdout) == {"FlakyTester_0": "COMPLETED", "FlakyTask_0": "FAILED"}
    assert table(result.stdout)["FlakyTester_0"][4] == "3 attempts"
    # 3 attempts of the first node (2 failures, then success), 1 of the second (no retries): 4 rows, in order
    assert sorted(statuses(work_dir, "FlakyTask")) == ["COMPLETED", "FAILED", "FAILED", "FAILED"]


SLEEPY = """\
!LUTE_DAG
task_name: Tester
next:
- task_name: FaultSleep
  next:
  - task_name: SocketTester
"""


def _start_sleepy(env: Dict[str, str], dag: Path, config: Path) -> LiveRun:
    live = LiveRun("flow", "run", str(dag), "-c", str(config), env=env)
    live.wait_for("child pid", timeout=120)
    live.wait_for("sleeping", timeout=60)
    return live


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "api"])
def test_cancelling_a_flow_cancels_its_running_task(
    how: str,
    flow_env: Dict[str, str],
    dag_file: Callable[[str], Path],
    flow_config: Callable[..., Path],
    work_dir: Path,
) -> None:
    config = flow_config({"FaultSleep": {"seconds": 120, "spawn_child": True}})
    with _start_sleepy(flow_env, dag_file(SLEEPY), config) as live:
        child = int(next(line for _, _, line in live.lines if "child pid" in line).split()[-1])
        if how == "api":
            run_id = last_flow_run(flow_env)["id"]
            requests.post(
                f"{flow_env['PREFECT_API_URL']}/flow_runs/{run_id}/set_state",
                json={"state": {"type": "CANCELLING"}, "force": True},
                timeout=10,
            ).raise_for_status()
        else:
            live.proc.send_signal(getattr(signal, how))
        code, stdout, stderr = live.finish(timeout=120)
    assert code == 1, stdout + stderr
    assert states(stdout) == {"Tester": "COMPLETED", "FaultSleep": "CANCELLED", "SocketTester": "CANCELLED"}
    assert statuses(work_dir, "FaultSleep") == ["CANCELLED"]
    assert rows(work_dir, "TestSocket") == []  # never started
    assert wait_gone(child, 30), "the Task's child outlived the flow"
    assert_no_leftovers(Path(flow_env["TMPDIR"]))
    assert last_flow_run(flow_env)["state_type"] == "CANCELLED"


def test_bad_input_starts_nothing(
    flow_env: Dict[str, str], dag_file: Callable[[str], Path], flow_config: Callable[..., Path], work_dir: Path
) -> None:
    before = last_flow_run(flow_env)["id"] if _any_runs(flow_env) else None
    dag = dag_file("!LUTE_DAG\ntask_name: Tester\nnext:\n- task_name: NoSuchTester\n")
    result = flow_cli("run", str(dag), "-c", str(flow_config()), env=flow_env)
    assert result.returncode == 2
    assert re.search(r"^error: .*dag\d+\.yaml:4: Tester > NoSuchTester: task_name: unknown Task", result.stderr)
    assert not (work_dir / "lute.db").exists()
    assert (last_flow_run(flow_env)["id"] if _any_runs(flow_env) else None) == before  # no flow run created


def _any_runs(env: Dict[str, str]) -> bool:
    url = env["PREFECT_API_URL"]
    return bool(requests.post(f"{url}/flow_runs/filter", json={"limit": 1}, timeout=10).json())


def test_an_unreachable_prefect_server_is_bad_input(
    flow_env: Dict[str, str], dag_file: Callable[[str], Path], flow_config: Callable[..., Path], work_dir: Path
) -> None:
    env = {**flow_env, "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    result = flow_cli("run", str(dag_file("!LUTE_DAG\ntask_name: Tester\n")), "-c", str(flow_config()), env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error: the Prefect server at PREFECT_API_URL=http://127.0.0.1:9/api does not answer" in result.stderr
    assert not (work_dir / "lute.db").exists()
    assert_no_leftovers(Path(env["TMPDIR"]))


def test_the_kernel_api_in_the_flows_own_threads(
    flow_env: Dict[str, str], dag_file: Callable[[str], Path], flow_config: Callable[..., Path], work_dir: Path
) -> None:
    env = {**flow_env, "LUTE_FLOW_NODE_SERVER": "0"}  # no node server: each Task's worker is exec'd
    dag = dag_file("!LUTE_DAG\ntask_name: Tester\nnext:\n- task_name: SocketTester\n")
    config = flow_config(experiment="{{ $EXPERIMENT }}", run="{{ $RUN }}")  # as configs for the eLog are written
    env["LUTE_PROFILE"] = "1"
    result = flow_cli("run", str(dag), "-c", str(config), "-e", "mfx1", "-r", "3_2026-12-01T10:00:00", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [r["str_var"] for r in rows(work_dir, "Test")] == ["run 3 of mfx1"]
    assert_profiled(result.stderr, steps=2)
    assert statuses(work_dir, "TestSocket") == ["COMPLETED"]
