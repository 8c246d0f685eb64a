"""The one seam through which the kernel talks to Slurm: ``sbatch``, ``scontrol``, ``sacct``.

Owns running those commands (argv lists, always with a time limit, started through
``lute_kernel.spawn.run_command``) and reading their answers: the job id of a submission, the state
and exit code of a job. Unit tests put fakes on PATH. Must not decide what to submit, and never
runs a Task (inside the job, ``lute-kernel run`` does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from lute_kernel.errors import LaunchError, LuteError
from lute_kernel.spawn import CommandNotFound, CommandResult, CommandTimedOut, run_command

NOT_INSTALLED = "Slurm is not installed here (no {command!r} on PATH): scripts/start-slurm.sh starts a one-node cluster"

# States after which a job never runs again (squeue/scontrol/sacct names; sacct adds "by <uid>").
FINAL_STATES = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "PREEMPTED",
        "OUT_OF_MEMORY",
        "BOOT_FAIL",
        "DEADLINE",
        "SPECIAL_EXIT",
        "REVOKED",
    }
)


class SlurmError(LuteError):
    """Slurm is missing, refused a request, or did not answer in time."""


@dataclass(frozen=True)
class JobState:
    """One look at a job: its state, the reason Slurm gives, its exit code and the signal that ended it."""

    state: str
    reason: str = ""
    exit_code: Optional[int] = None
    signal: Optional[int] = None

    @property
    def final(self) -> bool:
        """True when the job will not change state again."""
        return self.state in FINAL_STATES or self.state == "UNKNOWN"


def run_slurm(argv: Sequence[str], *, timeout_s: float) -> CommandResult:
    """Run one Slurm command with a time limit; raise SlurmError when it is missing or hangs."""
    try:
        return run_command(argv, timeout=timeout_s)
    except CommandNotFound:
        raise SlurmError(NOT_INSTALLED.format(command=argv[0])) from None
    except CommandTimedOut:
        raise SlurmError(
            f"{argv[0]} did not answer within {timeout_s:g} s (is slurmctld up? `scontrol ping`)"
        ) from None
    except LaunchError as exc:
        raise SlurmError(str(exc)) from None


def _said(done: CommandResult) -> str:
    return (done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}").replace("\n", " | ")


def submit_script(script: Path, *, timeout_s: float = 60.0, sbatch_args: Sequence[str] = ()) -> str:
    """Submit ``script`` with ``sbatch --parsable [SBATCH_ARGS] SCRIPT``; return the job id.

    ``sbatch_args`` are raw options, passed as given: on the command line they win over the
    script's ``#SBATCH`` lines.
    """
    done = run_slurm(["sbatch", "--parsable", *sbatch_args, str(script)], timeout_s=timeout_s)
    if done.returncode != 0:
        raise SlurmError(f"sbatch rejected the job: {_said(done)}")
    job_id = done.stdout.strip().splitlines()[-1].split(";")[0] if done.stdout.strip() else ""
    if not job_id.isdigit():
        raise SlurmError(f"sbatch printed no job id: {_said(done)}")
    return job_id


def cancel_job(job_id: str, *, timeout_s: float = 60.0) -> None:
    """``scancel`` the job (Slurm signals its processes, then ends it); a job already gone is no error."""
    done = run_slurm(["scancel", job_id], timeout_s=timeout_s)
    if done.returncode != 0 and "invalid job id" not in _said(done).lower():
        raise SlurmError(f"scancel {job_id} failed: {_said(done)}")


def parse_scontrol_job(text: str) -> JobState:
    """Read ``scontrol show job --oneliner`` output (``Key=Value`` words; some values hold spaces)."""
    state = re.search(r"\bJobState=(\S+)", text)
    if not state:
        raise SlurmError(f"scontrol printed no JobState: {text.strip()[:200]}")
    reason = re.search(r"\bReason=(\S+)", text)
    code = re.search(r"\bExitCode=(\d+):(\d+)", text)
    return JobState(
        state=state.group(1),
        reason="" if not reason or reason.group(1) == "None" else reason.group(1),
        exit_code=int(code.group(1)) if code else None,
        signal=int(code.group(2)) if code else None,
    )


def parse_sacct_job(text: str) -> Optional[JobState]:
    """Read ``sacct -X -n -P -o State,ExitCode,Reason`` output; None when the job is not listed."""
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 2 or not fields[0]:
            continue
        code, _, sig = fields[1].partition(":")
        return JobState(
            state=fields[0].split()[0],  # "CANCELLED by 0" -> CANCELLED
            reason=fields[2] if len(fields) > 2 and fields[2] != "None" else "",
            exit_code=int(code) if code.isdigit() else None,
            signal=int(sig) if sig.isdigit() else None,
        )
    return None


def query_job(job_id: str, *, timeout_s: float = 60.0) -> JobState:
    """Return the job's state: from slurmctld while it remembers the job, else from accounting.

    A job Slurm no longer knows (no accounting, and gone from slurmctld after MinJobAge) is
    ``UNKNOWN``, a final state.
    """
    done = run_slurm(["scontrol", "show", "job", "--oneliner", job_id], timeout_s=timeout_s)
    if done.returncode == 0:
        return parse_scontrol_job(done.stdout)
    if "invalid job id" not in _said(done).lower():
        raise SlurmError(f"scontrol show job {job_id} failed: {_said(done)}")
    argv: List[str] = ["sacct", "-X", "-n", "-P", "-j", job_id, "-o", "State,ExitCode,Reason"]
    try:
        acct = run_slurm(argv, timeout_s=timeout_s)
    except SlurmError:
        return JobState("UNKNOWN", "Slurm no longer knows the job")
    found = parse_sacct_job(acct.stdout) if acct.returncode == 0 else None
    return found or JobState("UNKNOWN", "Slurm no longer knows the job")
