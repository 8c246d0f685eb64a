"""The one place a process is started. Tests replace this seam; nothing else calls Popen or fork.

Owns turning a ``LaunchPlan`` into a running process in its own session (so the whole process
group can be signalled and nothing it starts outlives the run), registered as a child the kernel
started on purpose (``lute_kernel.descendants``: every other child at teardown is an escaped
orphan) and announced to the kernel's dead man's switch (``lute_kernel.deadman``: the group dies
with the kernel, even a SIGKILLed one).
"""

from __future__ import annotations

import subprocess
from typing import Union

from lute_kernel import deadman, descendants
from lute_kernel.errors import LaunchError
from lute_kernel.forked import ForkedProcess, can_fork, fork_worker
from lute_kernel.plan import LaunchPlan

Process = Union["subprocess.Popen[bytes]", ForkedProcess]


def spawn(plan: LaunchPlan) -> Process:
    """Start ``plan.argv`` with exactly ``plan.env``, stdout/stderr piped, in a new session.

    The local runtime's worker is forked from this interpreter (see ``lute_kernel.forked``);
    everything else is exec'd.
    """
    with descendants.spawning():
        proc = _spawn(plan)
    deadman.guard(proc.pid)  # its own session: the pid is the process group
    return proc


def _spawn(plan: LaunchPlan) -> Process:
    if can_fork(plan.argv, plan.runtime):
        forked = fork_worker(dict(plan.env), plan.cwd)
        descendants.started(forked.pid)
        return forked
    try:
        proc = subprocess.Popen(
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
    descendants.started(proc.pid)
    return proc
