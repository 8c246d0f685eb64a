"""What a prepared run would do, and whether it ran already: the dry run and the skip-if-done check.

Owns :func:`explain` (``lute-kernel explain``: parameters, argv, env, cwd, runtime, launcher, image,
the files written before launch) and :func:`done_row` (``run --skip-done``: the valid COMPLETED row
that ran exactly this). Both read a ``lute_kernel.api.PreparedRun`` and launch nothing; ``api``
re-exports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional

if TYPE_CHECKING:
    from lute_kernel.api import PreparedRun


def explain(prepared: PreparedRun) -> Dict[str, Any]:
    """Return what would run: parameters, argv, env, cwd, runtime, launcher, image."""
    from lute_kernel.forked import can_fork
    from lute_kernel.task_files import task_files

    return {
        "task": prepared.spec.name,
        "kind": prepared.spec.cls.kind,
        "image": prepared.spec.cls.image,
        "runtime": prepared.plan.runtime,
        "launcher": prepared.plan.launcher,
        "ranks": prepared.plan.ranks,
        "parameters": prepared.params.model_dump(mode="json"),
        "argv": list(prepared.plan.argv),
        "start": "fork" if can_fork(prepared.plan.argv, prepared.plan.runtime) else "exec",
        "env": dict(sorted(prepared.plan.env.items())),
        "cwd": prepared.plan.cwd,
        "files": {f.path: f.text for f in task_files(prepared.params)},  # written just before launch
    }


def done_row(prepared: PreparedRun) -> Optional[Dict[str, Any]]:
    """Return the valid COMPLETED row that already ran ``prepared`` exactly, or None (skip-if-done).

    The same Task, experiment and run, the same parameters (every column), the same image digest
    (none for the local runtime) and this kernel version. An invalidated row never counts.
    """
    from lute_kernel import __version__
    from lute_kernel.db import find_done_row

    header = prepared.params.lute_config
    return find_done_row(
        prepared.work_dir,
        prepared.spec.name,
        prepared.params.task_values(),
        experiment=header.experiment,
        run=header.run,
        image_sha256=prepared.plan.image_sha256,
        kernel_version=__version__,
    )
