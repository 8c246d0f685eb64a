"""The one place a process is started. Tests replace this seam; nothing else calls Popen or fork.

Owns turning a ``LaunchPlan`` into a running process in its own session (so the whole process
group can be signalled and nothing it starts outlives the run), registered as a child the kernel
started on purpose (``lute_kernel.descendants``: every other child at teardown is an escaped
orphan) and announced to the kernel's dead man's switch (``lute_kernel.deadman``: the group dies
with the kernel, even a SIGKILLed one). Also runs the kernel's helper commands (``run_command``:
Slurm's ``sbatch``/``scontrol``/``sacct``, ``apptainer --version``; ``stream_command``:
``apptainer build`` with its log streamed), each in its own session too, registered the same way,
and killed with its group when the caller gives up on it.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from lute_kernel import deadman, descendants
from lute_kernel.errors import LaunchError

if TYPE_CHECKING:  # not at run time: an early start spawns before pydantic (plan → task) is imported
    from lute_kernel.forked import ForkedProcess
    from lute_kernel.plan import LaunchPlan

Process = Union["subprocess.Popen[bytes]", "ForkedProcess"]
PathLike = Union[str, "os.PathLike[str]"]


def spawn(plan: LaunchPlan) -> Process:
    """Start ``plan.argv`` with exactly ``plan.env``, stdout/stderr piped, in a new session.

    The local runtime's worker is forked from this interpreter (see ``lute_kernel.forked``);
    everything else is exec'd.
    """
    from lute_kernel.forked import can_fork, fork_worker

    if not can_fork(plan.argv, plan.runtime):
        return spawn_exec(plan.argv, plan.env, plan.cwd)
    with descendants.spawning():
        forked = fork_worker(dict(plan.env), plan.cwd)
        descendants.started(forked.pid)
    deadman.guard(forked.pid)  # its own session: the pid is the process group
    return forked


def spawn_exec(argv: Sequence[str], env: Mapping[str, str], cwd: str) -> subprocess.Popen[bytes]:
    """Exec ``argv`` as :func:`spawn` does (a plan's process; an early start's, before its plan is built)."""
    with descendants.spawning():
        proc = _exec(argv, env, cwd)
    deadman.guard(proc.pid)  # its own session: the pid is the process group
    return proc


def _exec(argv: Sequence[str], env: Mapping[str, str], cwd: str) -> subprocess.Popen[bytes]:
    try:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        raise LaunchError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None
    descendants.started(proc.pid)
    return proc


# --- Helper commands (Slurm's sbatch/scontrol/sacct, apptainer build/--version) -------------------
# Not Tasks: they are short, or stream a build log, and their output is read whole. They still start
# here, in their own session, and their whole process group is killed if the caller gives up on them
# (time limit, Ctrl-C), so nothing a command started outlives it.

COMMAND_KILL_WAIT_S = 30.0
"""After SIGTERM to a command's group on interruption, how long it may take to exit before SIGKILL."""


class CommandNotFound(LaunchError):
    """The command's program is not installed (not on PATH)."""


class CommandTimedOut(LaunchError):
    """The command did not finish within its time limit; its process group was killed."""


class CommandResult(NamedTuple):  # not a dataclass: importing dataclasses costs an early start ~5 ms
    """How a helper command ended: its exit code and what it printed (decoded as UTF-8, errors replaced)."""

    argv: Tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def start_command(
    argv: Sequence[str],
    *,
    env: Optional[Mapping[str, str]] = None,
    cwd: Optional[PathLike] = None,
    stdin: Any = subprocess.DEVNULL,
    stdout: Any = subprocess.PIPE,
    stderr: Any = subprocess.PIPE,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start a helper command in its own session and return it (the caller waits, then calls ``reaped``).

    For callers that follow a long command themselves (a flow's ``submit --wait`` per Slurm step, a
    node server): registered as a child started on purpose, like every process the kernel starts.
    """
    if not argv:
        raise LaunchError("cannot run an empty command")
    try:
        with descendants.spawning():  # a child of ours on purpose: never swept as a run's orphan
            proc = subprocess.Popen(
                list(argv),
                env=None if env is None else dict(env),
                cwd=cwd,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                close_fds=True,
                pass_fds=tuple(pass_fds),
            )
            descendants.started(proc.pid)
    except FileNotFoundError:
        raise CommandNotFound(f"cannot run {argv[0]!r}: it is not installed here (not on PATH)") from None
    except OSError as exc:
        raise LaunchError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
    return proc


def reaped(proc: subprocess.Popen[bytes]) -> None:
    """Forget a command started with :func:`start_command` once it has been waited for."""
    descendants.reaped(proc.pid)


def _stop_group(proc: subprocess.Popen[bytes], *, grace_s: float) -> None:
    """SIGTERM the command's group, then SIGKILL it if it has not exited within ``grace_s``."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(proc.pid, signal.SIGKILL)  # whatever it left in its group goes too
    proc.wait()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def run_command(
    argv: Sequence[str],
    *,
    env: Optional[Mapping[str, str]] = None,
    cwd: Optional[PathLike] = None,
    timeout: Optional[float] = None,
    input: Optional[bytes] = None,  # the name subprocess uses
) -> CommandResult:
    """Run a helper command to the end and return its exit code and output.

    Args:
        argv: The command (a list: never a shell string).
        env: Its whole environment (default: the kernel's, unchanged).
        cwd: Its working directory.
        timeout: Seconds it may run; then its process group is killed and ``CommandTimedOut`` raised.
        input: Bytes written to its stdin (default: stdin is /dev/null).

    Raises:
        CommandNotFound: ``argv[0]`` is not installed.
        CommandTimedOut: It ran past ``timeout``.
        LaunchError: It could not be started.
    """
    proc = start_command(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop_group(proc, grace_s=0)
        raise CommandTimedOut(f"{argv[0]} did not finish within {timeout:g} s; it was stopped") from None
    finally:
        if proc.poll() is None:  # interrupted (Ctrl-C, an exception): never leave it running
            _stop_group(proc, grace_s=COMMAND_KILL_WAIT_S)
        descendants.reaped(proc.pid)
    return CommandResult(tuple(argv), proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def stream_command(
    argv: Sequence[str],
    on_output: Callable[[bytes], None],
    *,
    env: Optional[Mapping[str, str]] = None,
    cwd: Optional[PathLike] = None,
) -> int:
    """Run a long helper command (an image build), handing its merged stdout/stderr to ``on_output`` as it comes.

    Raw bytes, in the chunks the pipe gives (progress bars stay progress bars). Returns the exit code.
    If the caller is interrupted (Ctrl-C, an exception from ``on_output``), the command's group gets
    SIGTERM, then SIGKILL after ``COMMAND_KILL_WAIT_S``, before the exception goes on.

    Raises:
        CommandNotFound: ``argv[0]`` is not installed.
        LaunchError: It could not be started.
    """
    proc = start_command(
        argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    try:
        fd = proc.stdout.fileno()
        while chunk := os.read(fd, 65536):
            on_output(chunk)
        return proc.wait()
    finally:
        if proc.poll() is None:
            _stop_group(proc, grace_s=COMMAND_KILL_WAIT_S)
        descendants.reaped(proc.pid)
        proc.stdout.close()
