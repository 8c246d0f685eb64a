"""The node server's spare kernels: each step runs in a kernel forked ahead, as it ran in one forked on demand.

A script drives a real node server (no Prefect): steps one after the other and side by side, a step
cancelled the moment it started, a spare killed from outside, and the close — after which no
process the server forked (spares included) is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List

REPO = Path(__file__).resolve().parents[2]

CHILDREN_OF = r"""
def children_of(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found
"""
"""The children of a process, from /proc (in this module and in its scripts)."""
namespace: Dict[str, Any] = {"os": os}
exec(CHILDREN_OF, namespace)
_children_of: Callable[[int], List[int]] = namespace["children_of"]


def _drive(script: str, args: List[str], env: Dict[str, str]) -> List[str]:
    """Run a driver script against a real node server; return its output lines (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


DRIVER = r"""
import json, os, sys
from flows.backends.node_server import NodeServer, run_lines

config = sys.argv[1]
server = NodeServer.fork()
request = {"task": "Test", "config": config, "site": None, "runtime": "local", "host_env": dict(os.environ)}
seen = []

def run(cancel=False):
    run_id, stream, pid = server.start(request)
    if cancel:
        server.cancel(run_id)
    final = run_lines(stream, lambda line: None)
    stream.close()
    return pid, final

for _ in range(3):
    pid, final = run()
    seen.append(pid)
    print("STEP", final["kind"], final.get("status"), final.get("row_id"))
a = server.start(request)
b = server.start(request)  # two at once: the second takes the spare forked after the first
for run_id, stream, pid in (a, b):
    seen.append(pid)
    print("PAIR", run_lines(stream, lambda line: None)["status"])
    stream.close()
pid, final = run(cancel=True)
seen.append(pid)
print("CANCEL", final["kind"], final.get("status"))
print("PIDS", json.dumps(seen))
print("SERVER", server.pid)
server.close()
print("CLOSED")
"""


def test_steps_run_in_spares_and_nothing_is_left_after_close(
    make_config: Callable[..., Path], cli_env: Dict[str, str]
) -> None:
    config = make_config({"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}}})
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(config)], capture_output=True, text=True, cwd=REPO, env=cli_env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    steps = [line for line in lines if line.startswith("STEP")]
    assert steps == ["STEP outcome COMPLETED 1", "STEP outcome COMPLETED 2", "STEP outcome COMPLETED 3"]
    assert [line for line in lines if line.startswith("PAIR")] == ["PAIR COMPLETED", "PAIR COMPLETED"]
    cancelled = next(line for line in lines if line.startswith("CANCEL"))
    assert cancelled in ("CANCEL cancelled None", "CANCEL outcome CANCELLED"), cancelled
    pids = json.loads(next(line for line in lines if line.startswith("PIDS"))[5:])
    assert len(set(pids)) == len(pids)  # one kernel per step
    assert lines[-1] == "CLOSED"
    server = int(next(line for line in lines if line.startswith("SERVER"))[7:])
    assert not Path(f"/proc/{server}").exists() or _children_of(server) == []


SPARE_KILLED = r"""
import os, select, signal, sys
from flows.backends.node_server import NodeServer, run_lines

server = NodeServer.fork()
request = {"task": "Test", "config": sys.argv[1], "site": None, "runtime": "local", "host_env": dict(os.environ)}
run_id, stream, pid = server.start(request)
print("FIRST", run_lines(stream, lambda line: None)["status"])
stream.close()
for child in children_of(server.pid):
    if child != pid:  # the waiting spare (the first step's kernel may linger)
        gone = os.pidfd_open(child)
        os.kill(child, signal.SIGKILL)
        select.select([gone], [], [], 30)  # readable once it has exited
        print("KILLED")
run_id, stream, pid = server.start(request)
print("SECOND", run_lines(stream, lambda line: None)["status"])
stream.close()
server.close()
"""


def test_a_spare_killed_while_it_waits_is_replaced(make_config: Callable[..., Path], cli_env: Dict[str, str]) -> None:
    config = make_config({"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}}})
    lines = _drive(CHILDREN_OF + SPARE_KILLED, [str(config)], cli_env)
    assert lines[0] == "FIRST COMPLETED"
    assert "KILLED" in lines
    assert lines[-1] == "SECOND COMPLETED"


EDITED_BETWEEN_STEPS = r"""
import os, sqlite3, sys
from pathlib import Path
from flows.backends.node_server import NodeServer, run_lines

config, db = Path(sys.argv[1]), sys.argv[2]
server = NodeServer.fork()
request = {"task": "Test", "config": str(config), "site": None, "runtime": "local", "host_env": dict(os.environ)}

finals = []

def step():
    run_id, stream, pid = server.start(request)
    finals.append(run_lines(stream, lambda line: None))
    stream.close()
    return finals[-1].get("status") or finals[-1]["kind"]

text = config.read_text()
print("FIRST", step())  # the spare forked after it rehearses this config's text
print("PHASES", sorted(label for label, ms in finals[0]["phases"].items() if ms >= 0))
config.write_text(text.replace("first", "second, edited"))
print("EDITED", step())
config.write_text(text + "Test: [\n")  # not YAML any more
print("BROKEN", step())
config.write_text(text)
print("RESTORED", step())
server.close()
rows = sqlite3.connect(db).execute('SELECT str_var FROM Test ORDER BY id').fetchall()
print("ROWS", [row[0] for row in rows])
"""


def test_a_step_validates_its_own_config_not_the_one_its_spare_rehearsed(
    make_config: Callable[..., Path], cli_env: Dict[str, str], work_dir: Path
) -> None:
    # Each spare rehearses the step before its own (parsed files kept by their text): an edit
    # between steps must reach the next step, a broken file must fail it, a restored one pass.
    config = make_config({"Test": {"sleep_secs": 0, "str_var": "first", "compound_var": {"int_var": 1}}})
    lines = _drive(EDITED_BETWEEN_STEPS, [str(config), str(work_dir / "lute.db")], cli_env)
    assert [line for line in lines if not line.startswith("PHASES")][:4] == [
        "FIRST COMPLETED",
        "EDITED COMPLETED",
        "BROKEN input_error",
        "RESTORED COMPLETED",
    ]
    phases = next(line for line in lines if line.startswith("PHASES"))  # for `flow run --profile`
    assert "'Task'" in phases and "'in all (validation to recording)'" in phases and "host start-up" not in phases
    assert lines[-1] == "ROWS ['first', 'second, edited', 'first']"
