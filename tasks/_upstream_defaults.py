"""Small rules upstream LUTE's SFX parameter models share: default thread count, file stems, runs.

Pure helpers for the Task modules (no I/O beyond reading the environment). Must not read the DB:
DB-backed defaults call ``lute_kernel.parameters.recorded_value`` in each Task's own validators.
"""

from __future__ import annotations

import os


def default_nthreads() -> int:
    """Upstream's default: the job's (or this machine's) CPUs minus one, at least one."""
    cpus = os.environ.get("SLURM_NPROCS") or str(len(os.sched_getaffinity(0)))
    return max(int(cpus) - 1, 1)


def stem(path: str) -> str:
    """Return ``path`` without its file's extension.

    Upstream writes ``path.split(".")[0]``, which cuts at the first dot of the whole path; this
    gives the same name whenever no folder has a dot in it, and a correct one when one does.
    """
    root, _ = os.path.splitext(path)
    return root


def run_number(run: object, why: str) -> int:
    """Return the header's run as an int, or raise naming the default that needs it."""
    text = str(run)
    if not text.isdigit():
        raise ValueError(f"{why} needs the run number in the config header (got run={run!r})")
    return int(text)
