"""One submission, end to end: validate on the host, merge resources, write the script, submit.

Owns the path ``lute-kernel submit`` (and flows) take: the Task's config is validated here, with
the plan made as it will be inside the allocation, so bad input is an InputError and nothing is
submitted. Raw sbatch options (after ``--``) are read for the job's shape and passed to sbatch as
given. Writes only under ``<work_dir>/.lute/slurm/`` (the script and, from the job, its output).
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from lute_kernel import __version__
from lute_kernel.api import PathLike, PreparedRun, prepare
from lute_kernel.registry import Registry, discover
from lute_kernel.sites import SlurmSettings, load_site
from lute_kernel.slurm.commands import submit_script
from lute_kernel.slurm.resources import JobRequest, JobResources, merge_resources, time_for_timeout
from lute_kernel.slurm.sbatch_args import SbatchArgs, parse_sbatch_args
from lute_kernel.slurm.script import render_script, slurm_filename

SLURM_DIR = Path(".lute") / "slurm"


@dataclass(frozen=True)
class Submission:
    """A validated job, ready to submit: its resources, the kernel's command and the script text."""

    prepared: PreparedRun
    resources: JobResources
    command: List[str]
    script: str
    settings: SlurmSettings
    sbatch: SbatchArgs = field(default_factory=SbatchArgs)
    """Raw sbatch options, passed on sbatch's command line as given."""

    @property
    def slurm_dir(self) -> Path:
        """Where the script and the job's output go: ``<work_dir>/.lute/slurm``."""
        return Path(self.prepared.work_dir) / SLURM_DIR

    def output_path(self, job_id: str) -> Path:
        """The job's output file (stdout and stderr of ``lute-kernel run``)."""
        return self.slurm_dir / f"{self.resources.job_name}-{job_id}.out"


@dataclass(frozen=True)
class SubmittedJob:
    """What Slurm said: the job id, and where the script and the output are."""

    job_id: str
    script_path: Path
    output_path: Path


def allocation_env(host_env: Mapping[str, str], ntasks: int) -> Dict[str, str]:
    """Return ``host_env`` as the kernel will see it inside the job (for planning; nothing runs)."""
    return {**host_env, "SLURM_JOB_ID": host_env.get("SLURM_JOB_ID") or "0", "SLURM_NTASKS": str(ntasks)}


def kernel_command(
    python: str, task: str, config: Path, site: str, runtime: Optional[str], ranks: Optional[int] = None
) -> List[str]:
    """Return the argv of ``lute-kernel run`` inside the job."""
    argv = [python, "-m", "lute_kernel.cli", "run", task, "-c", str(config), "--site", site]
    if runtime:
        argv += ["--runtime", runtime]
    if ranks is not None:
        argv += ["--ranks", str(ranks)]
    return argv


def prepare_submission(
    task_name: str,
    config_path: PathLike,
    request: Optional[JobRequest] = None,
    *,
    site: Optional[str] = None,
    runtime: Optional[str] = None,
    registry: Optional[Registry] = None,
    host_env: Optional[Mapping[str, str]] = None,
    sbatch_args: Sequence[str] = (),
) -> Submission:
    """Validate the Task's config and resources; return the job to submit. Raises InputError; submits nothing."""
    registry = registry or discover()
    spec = registry.get(task_name)
    profile = load_site(site)
    sbatch = parse_sbatch_args(sbatch_args)
    resources = merge_resources(spec.cls, profile.slurm, request or JobRequest(), sbatch)
    env = os.environ if host_env is None else host_env
    prepared = prepare(
        spec.name,
        config_path,
        site=profile.reference,
        runtime=runtime,
        registry=registry,
        host_env=allocation_env(env, resources.ntasks),
        ranks=resources.ranks,
    )
    if resources.time is None:
        header = prepared.params.lute_config
        resources = replace(resources, time=time_for_timeout(header.task_timeout, profile.kill_grace_seconds))
    command = kernel_command(
        profile.slurm.python or sys.executable,
        spec.name,
        Path(os.path.abspath(config_path)),
        profile.reference,  # the job loads the same profile: by name, or by path for a site's own file
        runtime,
        resources.ranks,
    )
    output = slurm_filename(str(Path(prepared.work_dir) / SLURM_DIR)) + f"/{resources.job_name}-%j.out"
    script = render_script(resources, output, command, version=__version__, sbatch_args=sbatch.args)
    return Submission(prepared, resources, command, script, profile.slurm, sbatch)


def submit(submission: Submission, *, now: Optional[datetime] = None) -> SubmittedJob:
    """Write the script under ``<work_dir>/.lute/slurm/`` and hand it to sbatch."""
    folder = submission.slurm_dir
    folder.mkdir(parents=True, exist_ok=True)  # sbatch does not make --output's folder
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"{submission.resources.job_name}-{stamp}-{secrets.token_hex(3)}.sbatch"
    path.write_text(submission.script)
    job_id = submit_script(path, timeout_s=submission.settings.command_timeout_s, sbatch_args=submission.sbatch.args)
    return SubmittedJob(job_id, path, submission.output_path(job_id))
