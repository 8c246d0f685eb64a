"""The executor (lute_kernel.executor.execute): real worker processes, real sockets, real signals.

Every worker test runs twice: forked from this interpreter (the local runtime's fast start) and
exec'd as a new interpreter (``LUTE_NO_FORK=1``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np
import pytest

from lute_kernel import api
from lute_kernel.cancel import CancelToken
from lute_kernel.errors import LaunchError
from lute_kernel.events import RunEvent
from lute_kernel.executor import ExecutionOutcome, ExecutionSettings, execute
from lute_kernel.forked import can_fork
from lute_kernel.ipc.protocol import DEFAULT_MAX_BYTES
from lute_kernel.plan import LaunchPlan
from lute_kernel.registry import Registry, discover
from lute_kernel.task import TaskStatus

pytestmark = [pytest.mark.integration]  # real processes and real timeouts: seconds each

REPO = Path(__file__).resolve().parents[2]
TEST_TASKS = REPO / "tests" / "tasks"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return discover([TEST_TASKS, REPO / "tasks"], entry_points=False)


@pytest.fixture
def run_root() -> Iterator[Path]:
    # A short path of our own: pytest's tmp_path can exceed the 107-byte unix socket limit.
    path = Path(tempfile.mkdtemp(prefix="lkx-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def local_site(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LUTE_SITE", raising=False)
    monkeypatch.delenv("LUTE_SITES_DIR", raising=False)


@pytest.fixture(params=["fork", "exec"])
def start(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "exec":
        monkeypatch.setenv("LUTE_NO_FORK", "1")
    else:
        monkeypatch.delenv("LUTE_NO_FORK", raising=False)
        for thread in threading.enumerate():  # e.g. api's short-lived DB preloader from an earlier run
            if thread is not threading.main_thread():
                thread.join(2)
        if threading.active_count() != 1:
            pytest.skip(f"fork start needs a single-threaded kernel; threads: {threading.enumerate()}")
    return str(request.param)


@dataclass
class Run:
    outcome: ExecutionOutcome
    events: List[RunEvent]
    seconds: float
    prepared: Optional[api.PreparedRun] = None
    started: List[int] = field(default_factory=list)

    def texts(self, kind: str) -> List[str]:
        return [e.text for e in self.events if e.kind == kind]


Runner = Callable[..., Run]


@pytest.fixture
def run(registry: Registry, run_root: Path, make_config: Callable[..., Path]) -> Runner:
    """run(task, section, timeout=, grace=, max_bytes=, cancel=, on_event=, refuse=) -> Run; checks the run dir is gone.

    ``refuse``: the admission step (the RUNNING row) raises with this message.
    """

    def runner(
        task: str,
        section: Optional[Dict[str, Any]] = None,
        *,
        timeout: float = 30.0,
        grace: float = 5.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        cancel: Optional[CancelToken] = None,
        on_event: Optional[Callable[[RunEvent], None]] = None,
        refuse: str = "",
    ) -> Run:
        config = make_config({task: section or {}})
        prepared = api.prepare(task, config, registry=registry, site="local")
        events: List[RunEvent] = []

        def sink(event: RunEvent) -> None:
            events.append(event)
            if on_event is not None:
                on_event(event)

        settings = ExecutionSettings(timeout_s=timeout, grace_s=grace, run_root=run_root, max_bytes=max_bytes)
        started: List[int] = []

        def admitted() -> None:
            started.append(1)
            if refuse:
                raise RuntimeError(refuse)

        begin = time.monotonic()
        outcome = execute(
            prepared.plan,
            prepared.request,
            settings,
            on_event=sink,
            cancel=cancel,
            admit=admitted,
        )
        seconds = time.monotonic() - begin
        assert list(run_root.iterdir()) == [], "the run directory (and its socket) must be removed"
        assert outcome.end is not None and outcome.end >= outcome.start
        return Run(outcome, events, seconds, prepared, started)

    return runner


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (an orphan may wait for init to reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    state = re.search(r"^State:\s+(\S)", status, re.M)
    return state is not None and state.group(1) != "Z"


def gone_within(pid: int, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def child_pid(result: Run) -> int:
    [pid] = [int(m.group(1)) for t in result.texts("log") if (m := re.fullmatch(r"child pid (\d+)", t))]
    return pid


def test_completed_with_result_and_events(run: Runner, start: str) -> None:
    result = run("Test", {"sleep_secs": 0, "compound_var": {"int_var": 2}})
    assert result.prepared is not None
    assert can_fork(result.prepared.plan.argv, result.prepared.plan.runtime) is (start == "fork")
    outcome = result.outcome
    assert (outcome.status, outcome.exit_code, outcome.reason, outcome.error) == (TaskStatus.COMPLETED, 0, "", None)
    assert outcome.result == {
        "task_status": "COMPLETED",
        "summary": "Test Finished.",
        "payload": None,
        "impl_schemas": "",
    }
    assert result.texts("log") == [f"Test message {i}" for i in range(10)]
    assert result.texts("progress") == [f"[{i + 1}/10] step {i}" for i in range(10)]
    assert outcome.messages == 23  # hello, 10 log, 10 progress, result, bye
    assert outcome.stderr_tail == []
    assert result.started == [1]


def test_a_refused_admission_fails_the_run_before_any_task_code(run: Runner, start: str) -> None:
    # The RUNNING row is written while the worker starts: refused, the worker never gets its parameters.
    result = run("Test", {"sleep_secs": 0, "compound_var": {"int_var": 1}}, refuse="database is read-only")
    outcome = result.outcome
    assert result.started == [1]
    assert (outcome.status, outcome.reason) == (TaskStatus.FAILED, "not started: database is read-only")
    assert outcome.result is None and outcome.error is None
    assert result.texts("log") == [] and result.texts("progress") == []


def test_a_task_that_raises_fails_with_its_error(run: Runner, start: str) -> None:
    outcome = run("Test", {"sleep_secs": 0, "compound_var": {}, "throw_error": True}).outcome
    assert (outcome.status, outcome.exit_code) == (TaskStatus.FAILED, 1)
    assert outcome.reason == "RuntimeError: Testing Error!"
    assert outcome.error is not None
    assert (outcome.error["type"], outcome.error["message"]) == ("RuntimeError", "Testing Error!")
    assert outcome.error["traceback"].rstrip().endswith("RuntimeError: Testing Error!")
    assert outcome.result is None


def test_a_task_killed_by_sigkill(run: Runner, start: str) -> None:
    result = run("FaultKillSelf")
    outcome = result.outcome
    assert (outcome.status, outcome.exit_code) == (TaskStatus.FAILED, -signal.SIGKILL)
    assert outcome.reason == "the Task was killed by SIGKILL"
    assert result.texts("log") in ([], ["about to die"])  # a send just before SIGKILL may never leave


def test_exit_zero_without_a_result_is_a_failure(run: Runner, start: str) -> None:
    outcome = run("FaultExit", {"code": 0}).outcome
    assert (outcome.status, outcome.exit_code) == (TaskStatus.FAILED, 0)
    assert outcome.reason == "the Task exited without reporting a result"


def test_a_nonzero_exit_without_a_result(run: Runner, start: str) -> None:
    outcome = run("FaultExit", {"code": 5}).outcome
    assert (outcome.status, outcome.exit_code) == (TaskStatus.FAILED, 5)
    assert outcome.reason == "the Task exited with code 5"


def test_timeout_sends_sigterm(run: Runner, start: str) -> None:
    result = run("FaultSleep", {"seconds": 30}, timeout=1)
    outcome = result.outcome
    assert (outcome.status, outcome.exit_code) == (TaskStatus.TIMEDOUT, -signal.SIGTERM)
    assert outcome.reason == "timed out after 1 s"
    assert result.seconds >= 1.0  # never before the deadline (how long after depends on the machine)
    assert "timed out after 1 s: sending SIGTERM to the Task" in result.texts("status")


def test_timeout_of_a_task_ignoring_sigterm_ends_with_sigkill_of_the_group(run: Runner, start: str) -> None:
    # 4 s: the Task must have ignored SIGTERM (and started its child) before the deadline, busy machine or not.
    result = run("FaultSleep", {"seconds": 30, "ignore_sigterm": True, "spawn_child": True}, timeout=4, grace=0.5)
    outcome = result.outcome
    assert (outcome.status, outcome.exit_code) == (TaskStatus.TIMEDOUT, -signal.SIGKILL)
    assert outcome.reason == "timed out after 4 s"
    assert result.seconds >= 4.5  # the grace was given
    # The child inherited SIG_IGN for SIGTERM: only the SIGKILL of the whole group ends it.
    assert gone_within(child_pid(result))


def test_cancel_from_a_timer_thread(run: Runner, start: str) -> None:
    token = CancelToken()
    timers: List[threading.Timer] = []

    def cancel_once_running(event: RunEvent) -> None:
        # Started only once the Task runs, so the fork start still sees a single-threaded kernel.
        if event.kind == "progress" and not timers:
            timers.append(threading.Timer(0.2, token.cancel, args=(signal.SIGINT,)))
            timers[0].start()

    try:
        result = run("FaultSleep", {"seconds": 30}, cancel=token, on_event=cancel_once_running)
    finally:
        for timer in timers:
            timer.join()
        token.close()
    outcome = result.outcome
    assert outcome.status == TaskStatus.CANCELLED
    assert outcome.reason == "cancelled by SIGINT"
    assert result.seconds < 5
    assert "cancelled by SIGINT: sending SIGINT to the Task" in result.texts("status")
    assert outcome.error is not None and outcome.error["type"] == "KeyboardInterrupt"  # the worker said why


def test_cancel_before_the_task_starts_defaults_to_sigterm(run: Runner, start: str) -> None:
    token = CancelToken()
    token.cancel()
    try:
        result = run("FaultSleep", {"seconds": 30}, cancel=token, grace=10)
    finally:
        token.close()
    assert (result.outcome.status, result.outcome.reason) == (TaskStatus.CANCELLED, "cancelled by SIGTERM")
    # SIGTERM sent right after the start must reach the Task (not wait out the grace for SIGKILL).
    assert result.outcome.exit_code == -signal.SIGTERM
    assert result.seconds < 5


def test_children_of_a_timed_out_task_do_not_outlive_it(run: Runner, start: str) -> None:
    result = run("FaultSleep", {"seconds": 30, "spawn_child": True}, timeout=4)
    assert result.outcome.status == TaskStatus.TIMEDOUT
    assert gone_within(child_pid(result))


def test_children_of_a_completed_task_do_not_outlive_it(run: Runner, start: str) -> None:
    result = run("FaultSleep", {"seconds": 0.1, "spawn_child": True})
    assert result.outcome.status == TaskStatus.COMPLETED
    assert result.outcome.result is not None and result.outcome.result["summary"] == "slept"
    assert gone_within(child_pid(result))


def test_a_message_over_the_size_cap_fails_the_task(run: Runner, start: str) -> None:
    result = run("FaultBigMessage", {"nbytes": 64 * 1024}, max_bytes=16 * 1024)
    outcome = result.outcome
    assert outcome.status == TaskStatus.FAILED
    assert outcome.error is not None and outcome.error["type"] == "MessageTooLarge"
    assert outcome.reason.startswith("MessageTooLarge: ")
    assert "the IPC size cap of 16384 bytes" in outcome.reason or "the IPC size cap is 16384 bytes" in outcome.reason


def test_a_message_under_the_size_cap_passes(run: Runner, start: str) -> None:
    result = run("FaultBigMessage", {"nbytes": 1024}, max_bytes=16 * 1024)
    assert result.outcome.status == TaskStatus.COMPLETED
    [event] = [e for e in result.events if e.kind == "progress"]
    assert isinstance(event.data, np.ndarray) and event.data.shape == (1024,) and event.data.dtype == np.uint8


def test_progress_events_carry_numpy_arrays(run: Runner, start: str) -> None:
    result = run("TestSocket", {"array_size": 100, "num_arrays": 3})
    outcome = result.outcome
    assert outcome.status == TaskStatus.COMPLETED
    progress = [e for e in result.events if e.kind == "progress"]
    assert [e.text for e in progress] == [f"[{i + 1}/3] Sending array {i}" for i in range(3)]
    for event in progress:
        assert isinstance(event.data, np.ndarray)
        assert (event.data.dtype, event.data.shape) == (np.dtype("float64"), (100,))
        assert ((event.data >= 0) & (event.data < 1)).all()
    assert outcome.result is not None
    assert outcome.result["summary"] == "Sent 3 arrays"
    assert isinstance(outcome.result["payload"], np.ndarray) and outcome.result["payload"].shape == (100,)


def test_a_binary_task_completes_with_its_output(run: Runner) -> None:
    result = run("TestBinary", {"p_arg1": 2})
    outcome = result.outcome
    assert (outcome.status, outcome.exit_code, outcome.result, outcome.messages) == (TaskStatus.COMPLETED, 0, None, 0)
    assert sorted(result.texts("stdout")) == ["2 threads finished", "thread 0: done", "thread 1: done"]


def test_a_failing_binary_keeps_its_stderr_tail(run: Runner) -> None:
    result = run("TestBinaryErr")
    outcome = result.outcome
    assert (outcome.status, outcome.exit_code) == (TaskStatus.FAILED, 3)
    assert outcome.reason == "the Task exited with code 3"
    assert outcome.stderr_tail == ["test_threads_err: simulated failure after threads finished"]
    assert result.texts("stdout") == ["thread 0: done"]


def test_a_worker_that_never_connects(run_root: Path, tmp_path: Path) -> None:
    plan = LaunchPlan(
        argv=(sys.executable, "-c", "import sys; print('no kernel here', file=sys.stderr); sys.exit(2)"),
        env={},
        cwd=str(tmp_path),
        runtime="local",
        launcher="direct",
    )
    outcome = execute(plan, {"task": "X"}, ExecutionSettings(timeout_s=30, run_root=run_root))
    assert (outcome.status, outcome.exit_code) == (TaskStatus.FAILED, 2)
    assert outcome.reason == "the Task exited with code 2 before connecting to the kernel"
    assert outcome.stderr_tail == ["no kernel here"]
    assert list(run_root.iterdir()) == []


def test_output_without_a_final_newline_is_kept(run_root: Path, tmp_path: Path) -> None:
    plan = LaunchPlan(
        argv=(sys.executable, "-c", "import sys; sys.stdout.write('a\\nb'); sys.stderr.write('e')"),
        env={},
        cwd=str(tmp_path),
        runtime="local",
        launcher="direct",
    )
    events: List[RunEvent] = []
    outcome = execute(plan, None, ExecutionSettings(timeout_s=30, run_root=run_root), on_event=events.append)
    assert outcome.status == TaskStatus.COMPLETED
    assert [(e.kind, e.text) for e in events if e.kind == "stdout"] == [("stdout", "a"), ("stdout", "b")]
    assert outcome.stderr_tail == ["e"]


def test_execute_of_a_missing_executable_raises_launch_error_and_cleans_up(run_root: Path, tmp_path: Path) -> None:
    plan = LaunchPlan(argv=("/nonexistent/prog", "1"), env={}, cwd=str(tmp_path), runtime="local", launcher="direct")
    with pytest.raises(LaunchError) as info:
        execute(plan, None, ExecutionSettings(timeout_s=5, run_root=run_root))
    assert str(info.value) == "cannot start '/nonexistent/prog': No such file or directory"
    assert list(run_root.iterdir()) == []


def test_run_prepared_reports_a_missing_executable_as_failed(
    registry: Registry, make_config: Callable[..., Path], work_dir: Path
) -> None:
    config = make_config({"TestBinary": {"executable": "/nonexistent/prog"}})
    prepared = api.prepare("TestBinary", config, registry=registry, site="local")
    outcome = api.run_prepared(prepared)
    assert outcome.status == TaskStatus.FAILED
    assert outcome.reason == "cannot start '/nonexistent/prog': No such file or directory"
    assert outcome.exit_code is None
    assert outcome.summary == "cannot start '/nonexistent/prog': No such file or directory"
    from lute_kernel.db import latest_row

    row = latest_row(work_dir, "TestBinary", valid_only=False)
    assert row is not None
    assert (row["result.task_status"], row["valid_flag"], row["executable"]) == ("FAILED", 0, "/nonexistent/prog")


PRINTING_TASK = """\
import sys

from lute_kernel.task import Task


class PrintingTask(Task):
    def run(self):
        print("to stdout", flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        self.result.summary = "printed"
"""


def test_a_tasks_own_stdout_and_stderr_become_events(
    tmp_path: Path, run_root: Path, make_config: Callable[..., Path], start: str
) -> None:
    folder = tmp_path / "printing_tasks"
    folder.mkdir()
    (folder / "printing.py").write_text(PRINTING_TASK)
    registry = discover([folder], entry_points=False)
    prepared = api.prepare("PrintingTask", make_config({}), registry=registry, site="local")
    events: List[RunEvent] = []
    outcome = execute(
        prepared.plan, prepared.request, ExecutionSettings(timeout_s=30, run_root=run_root), on_event=events.append
    )
    assert outcome.status == TaskStatus.COMPLETED
    assert [e.text for e in events if e.kind == "stdout"] == ["to stdout"]
    assert [e.text for e in events if e.kind == "stderr"] == ["to stderr"]
    assert outcome.stderr_tail == ["to stderr"]


def escapee_pid(result: Run) -> int:
    [pid] = [int(m.group(1)) for t in result.texts("log") if (m := re.fullmatch(r"escapee pid (\d+)", t))]
    return pid


@pytest.mark.parametrize("how", ["setsid", "double_fork"])
@pytest.mark.parametrize("clear_env", [False, True])
def test_descendants_that_leave_the_process_group_do_not_outlive_the_run(
    run: Runner, start: str, how: str, clear_env: bool
) -> None:
    result = run("FaultEscape", {"how": how, "clear_env": clear_env})
    assert result.outcome.status == TaskStatus.COMPLETED
    pid = escapee_pid(result)
    assert gone_within(pid, 1.0), f"escapee {pid} ({how}) outlived the run"
    assert any("left behind" in t for t in result.texts("status"))


def test_an_escapee_of_a_timed_out_task_is_killed_too(run: Runner, start: str) -> None:
    result = run("FaultEscape", {"how": "double_fork", "seconds": 30}, timeout=4, grace=1)
    assert result.outcome.status == TaskStatus.TIMEDOUT
    assert gone_within(escapee_pid(result), 1.0)


@pytest.mark.parametrize("line_bytes", [0, 100])
def test_output_floods_never_starve_the_deadline(run: Runner, start: str, line_bytes: int) -> None:
    # 1 TB: far more than can be written before the 2 s deadline; the kernel must stop it on time,
    # with bounded memory (each over-long line keeps at most 64 KiB).
    result = run("FaultOutput", {"megabytes": 1 << 20, "line_bytes": line_bytes}, timeout=2, grace=1)
    assert result.outcome.status == TaskStatus.TIMEDOUT
    assert result.seconds < 10
    assert all(len(t) < 70_000 for t in result.texts("stdout"))


def test_one_process_keeps_the_fork_fast_start_over_many_runs(
    registry: Registry, run_root: Path, make_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long-lived process (a flow) runs Task after Task: no run may leave a thread behind that
    # turns the fork fast start off for the next one.
    monkeypatch.delenv("LUTE_NO_FORK", raising=False)
    if threading.active_count() != 1:
        pytest.skip(f"fork start needs a single-threaded kernel; threads: {threading.enumerate()}")
    config = make_config({"Test": {"sleep_secs": 0, "compound_var": {}}})
    starts = []
    for _ in range(50):
        prepared = api.prepare("Test", config, registry=registry, site="local")
        starts.append(can_fork(prepared.plan.argv, prepared.plan.runtime))
        outcome = api.run_prepared(prepared)
        assert outcome.status == TaskStatus.COMPLETED, outcome.reason
    assert starts == [True] * 50
    assert threading.active_count() == 1
