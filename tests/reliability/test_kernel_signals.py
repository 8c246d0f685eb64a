"""R3 kernel signals: TERM, INT, HUP and QUIT cancel the run; KILL leaves a visible row and nothing running.

A Task (sleeping, with a child of its own) runs through the real CLI, with the local runtime and in its
container; the kernel gets the signal while the Task runs. Promised: TERM/INT/HUP/QUIT — exit 1, a
CANCELLED row, no process and no run directory left. KILL (which the kernel cannot handle) — the Task
and its child die anyway (the kernel's dead man's switch), the row stays RUNNING and ``db show`` calls
it LOST, and the next run removes the dead kernel's run directory.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Callable, Dict

import pytest
from conftest import run_cli
from e2e import LiveRun, last_line, only_row, run_dirs
from faults_common import RUNTIMES, fault_env, images_built, leftovers

pytestmark = [pytest.mark.integration, pytest.mark.figure("R3 kernel signals")]
__all__ = ["images_built"]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(
    "signum",
    [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGKILL],
    ids=lambda s: signal.Signals(s).name,
)
def test_a_signal_to_the_kernel_ends_as_promised(
    signum: signal.Signals,
    runtime: str,
    make_config: Callable[..., Path],
    work_dir: Path,
    cli_env: Dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    if runtime == "apptainer":
        request.getfixturevalue("images_built")
    env = fault_env(cli_env, tmp_path)
    config = make_config(
        {"FaultSleep": {"seconds": 120, "spawn_child": True}, "Test": {"sleep_secs": 0, "compound_var": {}}}
    )
    with LiveRun("run", "FaultSleep", "-c", str(config), "--runtime", runtime, env=env) as live:
        live.wait_for("child pid")
        live.wait_for("sleeping")
        live.proc.send_signal(signum)
        code, out, err = live.finish(timeout=60)
    if signum == signal.SIGKILL:
        dirs, procs = leftovers(env)
        assert procs == [], f"the Task outlived its SIGKILLed kernel: {procs}"
        assert len(dirs) == 1  # nobody was left to remove it
        row = only_row(work_dir, "FaultSleep")
        assert row["result.task_status"] == "RUNNING" and row["valid_flag"] == 0
        shown = run_cli("db", "show", "FaultSleep", "-w", str(work_dir), env=env)
        assert "LOST" in shown.stdout, shown.stdout
        assert run_cli("run", "Test", "-c", str(config), env=env).returncode == 0
        assert run_dirs(Path(env["TMPDIR"])) == [], "the next run must remove a dead kernel's run directory"
        return
    assert code == 1, (out, err)
    row = only_row(work_dir, "FaultSleep")
    assert last_line(out).startswith("FaultSleep: CANCELLED in "), out
    assert row["result.task_status"] == "CANCELLED" and row["valid_flag"] == 0
    assert f"cancelled by {signum.name}" in row["result.summary"]
    dirs, procs = leftovers(env)
    assert dirs == [] and procs == [], (dirs, procs)
