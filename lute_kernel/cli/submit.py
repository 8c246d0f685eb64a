"""``lute-kernel submit``: run a Task as a Slurm batch job (``lute-kernel run`` inside the allocation)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Dict, List, Optional

import typer

from lute_kernel.cli.common import ConfigPath, RuntimeOption, SiteOption, reported_errors
from lute_kernel.cli.completion import complete_task
from lute_kernel.errors import EXIT_OK, EXIT_TASK_FAILED

if TYPE_CHECKING:
    from lute_kernel.sites import SlurmSettings

Count = Optional[int]


def submit(
    task: Annotated[
        str,
        typer.Argument(
            help="Task name (class name, or an upstream alias such as Tester).", autocompletion=complete_task
        ),
    ],
    config: ConfigPath,
    nodes: Annotated[Count, typer.Option("--nodes", "-N", help="sbatch --nodes.")] = None,
    ntasks: Annotated[
        Count, typer.Option("--ntasks", "-n", help="sbatch --ntasks: the Task's ranks plus the kernel's one.")
    ] = None,
    cpus_per_task: Annotated[Count, typer.Option("--cpus-per-task", help="sbatch --cpus-per-task.")] = None,
    partition: Annotated[Optional[str], typer.Option("--partition", "-p", help="sbatch --partition.")] = None,
    account: Annotated[Optional[str], typer.Option("--account", "-A", help="sbatch --account.")] = None,
    time: Annotated[
        Optional[str], typer.Option("--time", "-t", help="sbatch --time (default: from the config's task_timeout).")
    ] = None,
    site: SiteOption = None,
    runtime: RuntimeOption = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the job: print its state changes and output; exit with its result.")
    ] = False,
    cancel_on_exit: Annotated[
        bool,
        typer.Option(
            "--cancel-on-exit",
            help="With --wait: when this command is interrupted or killed (Ctrl-C, SIGTERM, SIGHUP, its parent"
            " exiting), scancel the job and follow it to its end (flows use this).",
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the sbatch script; submit nothing.")] = False,
    sbatch_args: Annotated[
        Optional[List[str]],
        typer.Argument(
            help="Raw sbatch options after `--` (e.g. `-- --ntasks=5 --partition=milano`), passed to sbatch as given;"
            " an MPI Task then runs on the job's tasks minus the kernel's one.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Validate TASK's config here, then submit `lute-kernel run TASK` as a Slurm batch job.

    Resources: the Task's defaults, then the site profile's `slurm:` settings, then these options,
    then the raw sbatch options after `--` (as upstream's submit script takes them).
    With --wait the exit code is the job's: 0 only when `lute-kernel run` completed the Task.
    """
    from lute_kernel.slurm.resources import JobRequest
    from lute_kernel.slurm.submission import prepare_submission
    from lute_kernel.slurm.submission import submit as submit_job

    request = JobRequest(nodes, ntasks, cpus_per_task, partition, account, time)
    if cancel_on_exit:
        _cancel_on_parent_exit()
    with reported_errors():
        submission = prepare_submission(
            task, config, request, site=site, runtime=runtime, sbatch_args=tuple(sbatch_args or ())
        )
    if dry_run:
        typer.echo(submission.script, nl=False)
        return
    with _Interrupts(cancel_on_exit) as interrupts:
        with reported_errors():
            job = submit_job(submission)
        typer.echo(f"submitted {submission.resources.job_name} as Slurm job {job.job_id}; output {job.output_path}")
        if wait:
            raise typer.Exit(_follow(job.job_id, job.output_path, submission.settings, interrupts))
        if interrupts.signum is not None:  # arrived while sbatch ran: the job exists now, so cancel it
            _cancel(job.job_id, interrupts.signum, submission.settings.command_timeout_s)


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Interrupts:
    """With --cancel-on-exit: SIGINT/SIGTERM/SIGHUP are remembered, and while armed the first one raises.

    Installed before sbatch runs, so a signal that lands while the job is being submitted still
    cancels it once its id is known; inactive, the default handlers stay (Ctrl-C stops following).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, active: bool) -> None:
        self.active = active
        self.armed = False
        self.signum: Optional[int] = None
        self._previous: Dict[int, Any] = {}

    def _handle(self, signum: int, _frame: object) -> None:
        if self.signum is None:
            self.signum = signum
            if self.armed:
                raise _Interrupted(signum)

    def arm(self) -> None:
        """From now on the first signal raises ``_Interrupted`` (at once if one came already)."""
        self.armed = self.active
        if self.armed and self.signum is not None:
            raise _Interrupted(self.signum)

    def disarm(self) -> None:
        """Signals are only remembered again (cancelling already: another one changes nothing)."""
        self.armed = False

    def __enter__(self) -> _Interrupts:
        if self.active:
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _cancel_on_parent_exit() -> None:
    """Ask the kernel (Linux) to send us SIGTERM when our parent exits, so an orphaned follower cancels its job."""
    import ctypes
    import os

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent was already gone before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _cancel(job_id: str, signum: int, timeout_s: float) -> None:
    from lute_kernel.slurm.commands import cancel_job

    typer.echo(f"slurm: {signal.Signals(signum).name} received: cancelling job {job_id} (scancel)")
    with reported_errors():
        cancel_job(job_id, timeout_s=timeout_s)


def _follow(job_id: str, output: Path, settings: SlurmSettings, interrupts: _Interrupts) -> int:
    from lute_kernel.slurm.commands import JobState
    from lute_kernel.slurm.follow import follow_job

    def on_state(state: JobState) -> None:
        if state.final:
            return  # said once, with the exit code, below
        why = f" ({state.reason})" if state.reason and state.state == "PENDING" else ""
        typer.echo(f"slurm: job {job_id} {state.state}{why}")

    def on_output(text: str) -> None:
        typer.echo(text, nl=False)

    def follow() -> JobState:
        return follow_job(job_id, output, poll_seconds=settings.poll_seconds, on_state=on_state, on_output=on_output)

    with reported_errors():
        try:
            interrupts.arm()
            final = follow()
        except _Interrupted as interrupted:
            interrupts.disarm()
            _cancel(job_id, interrupted.signum, settings.command_timeout_s)
            final = follow()
        except KeyboardInterrupt:
            typer.echo(f"slurm: stopped following; job {job_id} goes on (scancel {job_id} ends it)", err=True)
            return EXIT_TASK_FAILED
    ok = final.state == "COMPLETED" and final.exit_code == 0
    exit_text = f"exit code {final.exit_code}" if final.exit_code is not None else "no exit code"
    if final.signal:
        exit_text += f", signal {final.signal}"
    reason = f"; {final.reason}" if final.reason and not ok else ""
    typer.echo(f"slurm: job {job_id} ended {final.state} ({exit_text}{reason}); output {output}")
    return EXIT_OK if ok else EXIT_TASK_FAILED
