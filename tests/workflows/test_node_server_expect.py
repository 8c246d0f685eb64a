"""The node server's expectations: the next step's launch starts while the step before it runs.

A script drives a real node server (no Prefect) with exec'd workers (``LUTE_NO_FORK=1``: the local
runtime's fork cannot start early; a container's exec can, as these do): a step that was expected
adopts the launch its spare started; a step that was not (another Task) kills it and runs as
always; an expectation the flow never asks for dies with the server. The request's environment
carries a marker, so every worker process is found by it afterwards.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Callable, Dict

from e2e import processes_marked

REPO = Path(__file__).resolve().parents[2]
EARLY = "early start: validated while it starts"

DRIVER = r"""
import json, os, sys
from flows.backends.node_server import NodeServer, run_lines

config = sys.argv[1]
env = dict(os.environ)
test = {"task": "Test", "config": config, "site": None, "runtime": "local", "host_env": env}
other = {**test, "task": "TestSocket"}
server = NodeServer.fork()

def run(request, expect=None):
    run_id, stream, pid = server.start(request)
    if expect is not None:
        server.expect(expect)
    final = run_lines(stream, lambda line: None)
    stream.close()
    return final

def early(final):
    return any(label.startswith("early start: validated") for label in final.get("phases", {}))

first = run(test, expect=test)
second = run(test, expect=other)  # the Test just expected: adopted; then TestSocket is expected
third = run(test)  # but Test comes: the started TestSocket launch is killed, Test starts as always
for name, final in (("FIRST", first), ("SECOND", second), ("THIRD", third)):
    print(name, final["status"], early(final))
server.expect(test)  # never asked for: killed with its spare when the server closes
server.close()
print("CLOSED")
"""


def test_an_expected_step_adopts_its_started_launch_and_a_wrong_guess_leaves_nothing(
    make_config: Callable[..., Path], cli_env: Dict[str, str], tmp_path: Path, work_dir: Path
) -> None:
    config = make_config(
        {"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}}, "TestSocket": {"array_size": 10, "num_arrays": 1}}
    )
    runs = tmp_path / "runs"
    runs.mkdir()
    marker = f"LUTE_EXPECT_MARK=expect-{uuid.uuid4().hex}"
    env = {**cli_env, "LUTE_NO_FORK": "1", "TMPDIR": str(runs), marker.split("=")[0]: marker.split("=")[1]}
    driver = [sys.executable, "-c", DRIVER, str(config)]
    done = subprocess.run(driver, capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == ["FIRST COMPLETED False", "SECOND COMPLETED True", "THIRD COMPLETED False", "CLOSED"]
    assert [p for p in processes_marked(marker) if os.path.exists(f"/proc/{p}")] == []
    assert os.listdir(runs) == []  # every run directory removed, the killed launches' too
    with sqlite3.connect(work_dir / "lute.db") as db:
        statuses = [row[0] for row in db.execute('SELECT "result.task_status" FROM "Test" ORDER BY id')]
        assert statuses == ["COMPLETED"] * 3
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'TestSocket'").fetchall() == []
