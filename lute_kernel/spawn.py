"""The one place a process is started. Tests replace this seam; nothing else calls Popen.

Owns turning a ``LaunchPlan`` into a running process in its own session (so the whole process
group can be signalled and nothing it starts outlives the run).
"""

from __future__ import annotations

import subprocess

from lute_kernel.errors import LaunchError
from lute_kernel.plan import LaunchPlan


def spawn(plan: LaunchPlan) -> subprocess.Popen[bytes]:
    """Start ``plan.argv`` with exactly ``plan.env``, stdout/stderr piped, in a new session."""
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
