"""The ``slurm`` backend: each step is one Slurm job, ``lute-kernel submit TASK -c CFG --wait -- SBATCH_ARGS``.

Owns starting that command (argv list, its own session), reading its output as it grows — the
job's states, then the job's own ``lute-kernel run`` output — and the job's result from the
kernel's status line (``Test: COMPLETED in 0.53 s (row 2 in …/lute.db) — summary``). The step's
sbatch options are its ``slurm_params`` as given, then the site's overrides. Cancelling the step
sends SIGTERM to ``submit``, which (``--cancel-on-exit``) scancels the job and follows it to its
end; the job's kernel records the run CANCELLED. ``submit`` also cancels its job if this process
dies (parent-death signal). Never talks to Slurm itself: ``lute_kernel.slurm`` does.
"""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
import time
from typing import List, Optional

from flows.backends.base import LineSink, NodeRequest, NodeResult, RunningNodes
from flows.rules import NodeState
from lute_kernel.spawn import reaped, start_command

_SUBMITTED = re.compile(r"^submitted \S+ as Slurm job (\d+); output ")
_ENDED = re.compile(r"^slurm: job (\d+) ended (\w+)")
_STATUS = re.compile(
    r"^(?P<task>\w+): (?P<status>COMPLETED|FAILED|TIMEDOUT|CANCELLED) in (?P<seconds>[\d.]+) s"
    r" \((?:row (?P<row>-?\d+) in (?P<db>.+?)|NOT RECORDED)\)(?: — (?P<summary>.*))?$"
)
_LEVEL = re.compile(r"^(\[\d+\] )?(DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+(.*)$")
_JOB_STATES = {"CANCELLED": NodeState.CANCELLED, "TIMEOUT": NodeState.TIMEDOUT, "DEADLINE": NodeState.TIMEDOUT}


def submit_argv(request: NodeRequest) -> List[str]:
    """Return the argv that runs ``request`` as a Slurm job and follows it."""
    argv = [sys.executable, "-m", "lute_kernel.cli", "submit", request.task, "-c", request.config]
    argv += ["--site", request.site]
    if request.runtime:
        argv += ["--runtime", request.runtime]
    return [*argv, "--wait", "--cancel-on-exit", "--", *request.sbatch_args]


class SlurmBackend:
    """Runs each step as one Slurm job through ``lute-kernel submit --wait``."""

    name = "slurm"

    def run(self, request: NodeRequest, on_line: LineSink, running: RunningNodes, key: str) -> NodeResult:
        """Submit the step's job, stream its output, and return how the job's Task ended."""
        started = time.monotonic()
        # Its own session: Ctrl-C reaches the flow, which cancels its steps through us.
        process = start_command(submit_argv(request), env=dict(request.host_env), stderr=subprocess.STDOUT)
        running.add(key, lambda _signum: _stop(process))
        job_id: Optional[str] = None
        job_state = ""
        status: Optional[re.Match[str]] = None
        last_error = ""
        assert process.stdout is not None
        try:
            for raw in io.TextIOWrapper(process.stdout, errors="replace"):
                line = raw.rstrip("\n")
                if match := _SUBMITTED.match(line):
                    job_id = match.group(1)
                elif match := _ENDED.match(line):
                    job_state = match.group(2)
                elif match := _STATUS.match(line):
                    status = match
                if line.startswith("error:"):
                    last_error = line[len("error: ") :]
                level_match = _LEVEL.match(line)
                if level_match:
                    on_line(level_match.group(2), (level_match.group(1) or "") + level_match.group(3))
                else:
                    on_line("ERROR" if line.startswith("error:") else "INFO", line)
            code = process.wait()
        finally:
            running.remove(key)
            if process.poll() is None:
                _stop(process)
                process.wait()
            reaped(process)
        seconds = time.monotonic() - started
        if status is not None:
            row = status.group("row")
            return NodeResult(
                status=NodeState(status.group("status")),
                task=status.group("task"),
                row_id=int(row) if row is not None else None,
                db=status.group("db") or "",
                summary=status.group("summary") or "",
                seconds=float(status.group("seconds")),
                reason="" if status.group("status") == "COMPLETED" else f"Slurm job {job_id} ended {job_state}",
                exit_code=code,
                job_id=job_id,
            )
        state = _JOB_STATES.get(job_state, NodeState.FAILED)
        why = f"Slurm job {job_id} ended {job_state}" if job_id else (last_error or f"submit exited {code}")
        return NodeResult(state, request.task, seconds=seconds, reason=why, exit_code=code, job_id=job_id)

    def close(self) -> None:
        """Nothing to release: every job is followed to its end by its own ``submit``."""


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # submit --cancel-on-exit: scancel, then follow to the end
