"""The one place a process is started. Tests replace this seam; nothing else calls Popen or fork.

Owns turning a ``LaunchPlan`` into a running process in its own session (so the whole process
group can be signalled and nothing it starts outlives the run).
"""

from __future__ import annotations

import subprocess
from typing import Union

from lute_kernel.errors import LaunchError
from lute_kernel.forked import ForkedProcess, can_fork, fork_worker
from lute_kernel.plan import LaunchPlan

Process = Union["subprocess.Popen[bytes]", ForkedProcess]


def spawn(plan: LaunchPlan) -> Process:
    """Start ``plan.argv`` with exactly ``plan.env``, stdout/stderr piped, in a new session.

    The local runtime's worker is forked from this interpreter (see ``lute_kernel.forked``);
    everything else is exec'd.
    """
    if can_fork(plan.argv, plan.runtime):
        return fork_worker(dict(plan.env), plan.cwd)
    try:
        return subprocess.Popen(
            list(plan.argv),
            env=plan.env,
            cwd=plan.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        raise LaunchError(f"cannot start {plan.argv[0]!r}: {exc.strerror or exc}") from None
