"""R2 Task faults: whatever a Task does wrong, the run ends as it should, is recorded, and leaves nothing.

Each fault runs through the real CLI, with the local runtime and in its container. Promised for every
case: the expected exit code and status, one row with that status, no run directory and no process of
the run left behind, the kernel's memory bounded (1 GB of output must not grow it).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import pytest
from conftest import REPO
from e2e import only_row, wait_gone
from faults_common import RUNTIMES, fault_env, images_built, leftovers

pytestmark = [pytest.mark.integration, pytest.mark.figure("R2 Task faults")]
__all__ = ["images_built"]

MAX_KERNEL_RSS_MB = 400

FAULTS: Dict[str, Tuple[str, Dict[str, Any], int, str, str]] = {
    # id: (Task, section, exit code, status, text in the summary)
    "raise": ("Test", {"compound_var": {}, "throw_error": True, "sleep_secs": 0}, 1, "FAILED", "Testing Error!"),
    "exit-code": ("FaultExit", {"code": 7}, 1, "FAILED", "exited with code 7"),
    "exit-zero-silently": ("FaultExit", {"code": 0}, 1, "FAILED", "without reporting a result"),
    "segfault": ("FaultSegfault", {}, 1, "FAILED", "SIGSEGV"),
    "sigkill": ("FaultKillSelf", {}, 1, "FAILED", "SIGKILL"),
    "oom": ("FaultMemory", {"limit_mb": 1024, "allocate_mb": 4096}, 1, "FAILED", "MemoryError"),
    "hang-past-timeout": ("FaultSleep", {"seconds": 120}, 1, "TIMEDOUT", "timed out after 3 s"),
    "hang-ignoring-sigterm": ("FaultSleep", {"seconds": 120, "ignore_sigterm": True}, 1, "TIMEDOUT", "timed out"),
    "1GB-no-newline": ("FaultOutput", {"megabytes": 1024, "line_bytes": 0}, 0, "COMPLETED", "written: 1073741824"),
    "1GB-in-lines": ("FaultOutput", {"megabytes": 1024, "line_bytes": 65536}, 0, "COMPLETED", "written: 10737"),
    "over-cap-message": ("FaultBigMessage", {"nbytes": 4 << 20}, 1, "FAILED", "MessageTooLarge"),
    "escape-setsid": ("FaultEscape", {"how": "setsid"}, 0, "COMPLETED", "escaped"),
    "escape-double-fork": ("FaultEscape", {"how": "double_fork", "clear_env": True}, 0, "COMPLETED", "escaped"),
}

SITE = """
name: faults
runtime: local
kill_grace_seconds: 2
ipc_max_bytes: 1048576
images:
  run_from: sandbox
"""


def _run_measured(args: list, env: Dict[str, str], timeout: float) -> Tuple[int, str, str, float]:
    """Run the CLI, stdout to a file; return (exit code, stdout tail, stderr, peak RSS MB of the kernel)."""
    script = textwrap.dedent(
        """
        import os, resource, subprocess, sys
        out = open(sys.argv[1], "wb")
        proc = subprocess.Popen(sys.argv[2:], stdout=out, stderr=subprocess.PIPE)
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        sys.stderr.buffer.write(err)
        print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
        """
    )
    out_file = Path(env["TMPDIR"]).parent / "stdout.txt"
    done = subprocess.run(
        [sys.executable, "-c", script, str(out_file), sys.executable, "-m", "lute_kernel.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
    )
    code, rss_kb = done.stdout.split()
    with open(out_file, "rb") as handle:
        handle.seek(max(0, out_file.stat().st_size - 4000))
        tail = handle.read().decode(errors="replace")
    out_file.unlink()
    return int(code), tail, done.stderr, int(rss_kb) / 1024


def _processes_running(argv: str) -> list:
    """Pids of live processes whose command line is ``argv`` (seen from the host, whatever namespace)."""
    wanted = argv.replace(" ", "\0").encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (
                entry.name.isdigit()
                and (entry / "cmdline").read_bytes() == wanted
                and not wait_gone(int(entry.name), 3)
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_task_fault_ends_as_promised(
    fault: str,
    runtime: str,
    make_config: Callable[..., Path],
    work_dir: Path,
    cli_env: Dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    if runtime == "apptainer":
        request.getfixturevalue("images_built")
    task, section, exit_code, status, text = FAULTS[fault]
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "faults.yaml").write_text(SITE)
    env = fault_env(cli_env, tmp_path, LUTE_SITES_DIR=str(sites))
    config = make_config({task: section}, task_timeout=3 if "hang" in fault else 300)
    code, tail, err, rss_mb = _run_measured(
        ["run", task, "-c", str(config), "--site", "faults", "--runtime", runtime], env, timeout=240
    )
    assert code == exit_code, (tail, err)
    assert re.search(rf"^{task}: {status} in ", tail, re.M), tail
    row = only_row(work_dir, task)
    assert row["result.task_status"] == status
    assert text in (row["result.summary"] or ""), row["result.summary"]
    assert row["valid_flag"] == int(status == "COMPLETED")
    if fault != "oom":  # the measure takes the kernel and its Task together; an OOM Task fills its limit
        assert rss_mb < MAX_KERNEL_RSS_MB, f"the kernel (or the Task) peaked at {rss_mb:.0f} MB"
    if fault.startswith("escape"):
        [argv] = re.findall(r"escapee argv (sleep \S+)", tail)
        assert _processes_running(argv) == [], f"an escaped descendant ({argv}) outlived the run"
    dirs, procs = leftovers(env)
    assert dirs == [] and procs == [], (dirs, procs)
