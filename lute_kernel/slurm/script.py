"""The sbatch script of one submission, as text. Pure.

The kernel never spawns through a shell, but an sbatch script is a file Slurm runs with bash: its
one command line is written with ``shlex.join``, so every word is quoted. ``#SBATCH`` lines are
parsed by sbatch itself, which knows double quotes and backslashes but not single quotes: values
that need quoting are written in double quotes.
"""

from __future__ import annotations

import re
import shlex
from typing import List, Sequence

from lute_kernel.errors import InputError
from lute_kernel.slurm.resources import JobResources

_PLAIN = re.compile(r"[A-Za-z0-9_.,:/%@+=\-]+")


def slurm_filename(path: str) -> str:
    """Escape ``%`` in a literal path (sbatch reads ``%j``, ``%x``, … in --output as patterns)."""
    return path.replace("%", "%%")


def directive_value(value: str) -> str:
    """Return ``value`` as sbatch's ``#SBATCH`` parser reads it back unchanged."""
    if "\n" in value or "\r" in value or "\0" in value:
        raise InputError(f"an sbatch option cannot hold a line break: {value!r}")
    if _PLAIN.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sbatch_options(job: JobResources, output: str) -> List[str]:
    """Return the sbatch options of ``job`` (``output`` is a Slurm filename pattern such as ``…-%j.out``)."""
    options = [f"--job-name={directive_value(job.job_name)}"]
    if job.nodes is not None:
        options.append(f"--nodes={job.nodes}")
    options += [f"--ntasks={job.ntasks}", f"--cpus-per-task={job.cpus_per_task}"]
    if job.gpus:
        options.append(f"--gpus={job.gpus}")
    for name in ("partition", "account", "time"):
        value = getattr(job, name)
        if value is not None:
            options.append(f"--{name}={directive_value(value)}")
    options.append(f"--output={directive_value(output)}")
    for arg in job.extra_args:
        flag, sep, value = arg.partition("=")
        options.append(f"{flag}{sep}{directive_value(value)}" if sep else directive_value(arg))
    return options


def render_script(
    job: JobResources, output: str, command: Sequence[str], *, version: str, sbatch_args: Sequence[str] = ()
) -> str:
    """Return the batch script that runs ``command`` (the kernel's argv) in the allocation.

    ``sbatch_args`` (raw options) are not written as directives: they go on sbatch's command line,
    as given; a comment line shows them.
    """
    lines = ["#!/bin/bash"]
    lines += [f"#SBATCH {option}" for option in sbatch_options(job, output)]
    if sbatch_args:
        lines.append(f"# Submitted with: sbatch --parsable {shlex.join(sbatch_args)} <this script>")
    lines += [
        f"# Written by lute-kernel {version} (`lute-kernel submit`): runs one Task with `lute-kernel run`.",
        "# The kernel keeps one task of the allocation; an MPI Task's ranks run in the others (srun).",
        "# exec: the kernel is the job's main process, so Slurm's SIGTERM (scancel, time limit) reaches it",
        "# and it records the run within Slurm's KillWait.",
        "exec " + shlex.join(command),
        "",
    ]
    return "\n".join(lines)
