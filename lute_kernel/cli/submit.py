"""``lute-kernel submit``: run a Task as a Slurm batch job (``lute-kernel run`` inside the allocation)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lute_kernel.cli.common import ConfigPath, RuntimeOption, SiteOption, reported_errors
from lute_kernel.cli.completion import complete_task
from lute_kernel.errors import EXIT_OK, EXIT_TASK_FAILED

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
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the sbatch script; submit nothing.")] = False,
) -> None:
    """Validate TASK's config here, then submit `lute-kernel run TASK` as a Slurm batch job.

    Resources: the Task's defaults, then the site profile's `slurm:` settings, then these options.
    With --wait the exit code is the job's: 0 only when `lute-kernel run` completed the Task.
    """
    from lute_kernel.slurm.resources import JobRequest
    from lute_kernel.slurm.submission import prepare_submission
    from lute_kernel.slurm.submission import submit as submit_job

    request = JobRequest(nodes, ntasks, cpus_per_task, partition, account, time)
    with reported_errors():
        submission = prepare_submission(task, config, request, site=site, runtime=runtime)
    if dry_run:
        typer.echo(submission.script, nl=False)
        return
    with reported_errors():
        job = submit_job(submission)
    typer.echo(f"submitted {submission.resources.job_name} as Slurm job {job.job_id}; output {job.output_path}")
    if wait:
        raise typer.Exit(_follow(job.job_id, job.output_path, submission.settings.poll_seconds))


def _follow(job_id: str, output: Path, poll_seconds: float) -> int:
    from lute_kernel.slurm.commands import JobState
    from lute_kernel.slurm.follow import follow_job

    def on_state(state: JobState) -> None:
        if state.final:
            return  # said once, with the exit code, below
        why = f" ({state.reason})" if state.reason and state.state == "PENDING" else ""
        typer.echo(f"slurm: job {job_id} {state.state}{why}")

    def on_output(text: str) -> None:
        typer.echo(text, nl=False)

    with reported_errors():
        try:
            final = follow_job(job_id, output, poll_seconds=poll_seconds, on_state=on_state, on_output=on_output)
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
