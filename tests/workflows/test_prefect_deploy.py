"""A real deployment: the session's Prefect server, a process worker, ``flow deploy`` and ``flow trigger``.

What the eLog does at the end of a run: the ARP job calls ``flow trigger`` with the run's
experiment and run (and its own variables); the worker runs the flow; the rows appear in lute.db,
the run's status counters are posted with the ARP's token, and the token is nowhere else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
import requests
from e2e import LiveRun, wait_gone

from workflows.flow_helpers import FLOW_TASKS, REPO, TEST_TASKS, flow_cli, rows, statuses

pytestmark = [pytest.mark.integration, pytest.mark.prefect]


@pytest.fixture(scope="module")
def worker(prefect_server: Dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, str]]:
    """A process worker on a pool of its own; yields the environment deploy/trigger use."""
    folder = tmp_path_factory.mktemp("worker")
    pool = f"lute-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        **prefect_server,
        "LUTE_TASKS_PATH": os.pathsep.join([str(TEST_TASKS), str(FLOW_TASKS)]),
        "PYTHONPATH": str(REPO),
        "PREFECT_WORKER_QUERY_SECONDS": "1",  # pick the run up at once (the default asks every 10 s)
        "TMPDIR": str(folder / "tmp"),
    }
    env.pop("LUTE_SITE", None)
    (folder / "tmp").mkdir()
    log = open(folder / "worker.log", "wb")  # noqa: SIM115 - open while the worker runs
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"],
        env=env,
        cwd=folder,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield {**env, "LUTE_TEST_POOL": pool}
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


class _Counters(BaseHTTPRequestHandler):
    posts: List[Tuple[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
        self.posts.append((self.headers.get("Authorization", ""), body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def counters() -> Iterator[Tuple[str, List[Tuple[str, Any]]]]:
    _Counters.posts = []
    server = HTTPServer(("127.0.0.1", 0), _Counters)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jid/counters", _Counters.posts
    server.shutdown()
    server.server_close()


def _deploy(worker: Dict[str, str], dag: Path, config: Path) -> str:
    name = f"test-{uuid.uuid4().hex[:6]}"
    result = flow_cli(
        "deploy", str(dag), "-c", str(config), "--pool", worker["LUTE_TEST_POOL"], "--name", name, env=worker
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"deployed lute_dag/{name} (" in result.stdout
    return name


def test_deploy_and_trigger_run_the_flow_for_an_experiment_and_run(
    worker: Dict[str, str],
    dag_file: Callable[[str], Path],
    flow_config: Callable[..., Path],
    work_dir: Path,
    counters: Tuple[str, List[Tuple[str, Any]]],
) -> None:
    config = flow_config(experiment="{{ $EXPERIMENT }}", run="{{ $RUN }}")  # written for the eLog: no run yet
    name = _deploy(worker, dag_file("!LUTE_DAG\ntask_name: Tester\nnext:\n- task_name: SocketTester\n"), config)
    url, posts = counters
    arp = {"JID_UPDATE_COUNTERS": url, "ARP_JOB_ID": "arp-1", "Authorization": "Bearer s3cr3t-token"}
    result = flow_cli("trigger", name, "--experiment", "mfx100", "--run", "9", env={**worker, **arp})
    assert result.returncode == 0, result.stdout + result.stderr
    assert [r["str_var"] for r in rows(work_dir, "Test")] == ["run 9 of mfx100"]
    assert statuses(work_dir, "TestSocket") == ["COMPLETED"]
    assert "[Tester] INFO    Test message 9" in result.stdout  # the run's logs, followed from the server
    assert "flow run Completed" in result.stdout
    assert {"key": "Test status", "value": "RUNNING"} in posts[0][1]
    assert {token for token, _ in posts} == {"Bearer s3cr3t-token"}
    assert [
        item for _, body in posts for item in body if item == {"key": "TestSocket status", "value": "COMPLETED"}
    ] == [{"key": "TestSocket status", "value": "COMPLETED"}]
    api = worker["PREFECT_API_URL"]
    (run,) = requests.post(f"{api}/flow_runs/filter", json={"limit": 1, "sort": "START_TIME_DESC"}, timeout=10).json()
    assert run["parameters"]["experiment"] == "mfx100" and "s3cr3t" not in json.dumps(run["parameters"])
    blocks = requests.post(f"{api}/block_documents/filter", json={}, timeout=10).json()
    assert [b["name"] for b in blocks if b["name"].startswith("lute-arp-")] == []  # read once, then deleted
    logs = requests.post(f"{api}/logs/filter", json={"logs": {"flow_run_id": {"any_": [run["id"]]}}}, timeout=10)
    assert "s3cr3t" not in logs.text and not any("s3cr3t" in p.read_text() for p in work_dir.rglob("*.yaml"))


def test_trigger_reads_the_arps_run_and_cancels_the_flow_when_killed(
    worker: Dict[str, str], dag_file: Callable[[str], Path], flow_config: Callable[..., Path], work_dir: Path
) -> None:
    config = flow_config({"FaultSleep": {"seconds": 120, "spawn_child": True}}, run="{{ $RUN }}")
    name = _deploy(worker, dag_file("!LUTE_DAG\ntask_name: FaultSleep\nnext:\n- task_name: Tester\n"), config)
    env = {**worker, "EXPERIMENT": "xpptut15", "RUN_NUM": "12_2026-12-01T10:00:00"}
    with LiveRun("flow", "trigger", name, env=env) as live:
        assert "for xpptut15 run 12_2026-12-01T10:00:00" in live.wait_for("flow run ", timeout=60)
        child = int(live.wait_for("child pid", timeout=120).split()[-1])
        live.proc.terminate()  # the eLog's "kill" of the ARP job
        code, stdout, stderr = live.finish(timeout=180)
    assert code == 1, stdout + stderr
    assert "flow run Cancelled" in stdout
    assert statuses(work_dir, "FaultSleep") == ["CANCELLED"]
    assert rows(work_dir, "Test") == []
    assert wait_gone(child, 30)


def test_deploy_and_trigger_refuse_bad_input(
    worker: Dict[str, str], dag_file: Callable[[str], Path], flow_config: Callable[..., Path]
) -> None:
    dag = dag_file("!LUTE_DAG\ntask_name: NoSuchTester\n")
    bad = flow_cli("deploy", str(dag), "-c", str(flow_config()), "--pool", worker["LUTE_TEST_POOL"], env=worker)
    assert bad.returncode == 2 and "unknown Task 'NoSuchTester'" in bad.stderr
    missing = flow_cli("trigger", "no-such-deployment", "-e", "x", "-r", "1", env=worker)
    assert missing.returncode == 2 and "no deployment 'lute_dag/no-such-deployment'" in missing.stderr
    unset = {k: v for k, v in worker.items() if k not in ("EXPERIMENT", "RUN_NUM")}
    no_run = flow_cli("trigger", "x", env=unset)
    assert no_run.returncode == 2 and "give --experiment and --run" in no_run.stderr
