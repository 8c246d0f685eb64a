"""An early start: a repeated ``run`` starts its container before validation, kept only if it is the launch needed.

A container takes ~0.3 s to reach the worker's hello; the host takes ~0.2 s to import the kernel and
validate the run. Done one after the other, a short Task in its image costs nearly twice its bare
``apptainer exec``. When the same command ran before (:mod:`lute_kernel.launch_memo` kept its
launch, and its config file and environment are unchanged), :meth:`EarlyStart.begin` makes a new
run directory, spawns that launch at once (before pydantic or zmq is imported) and binds its
socket while the container starts. The worker inside only connects and says hello: it gets its
parameters, so runs any Task code, only from the executor, after validation and the RUNNING row.

Once the run is validated, :meth:`EarlyStart.take` compares the plan (built with the same run
directory) with what was started: argv, environment, cwd, socket address, prefix, private folders,
message limit. Identical: the launch session adopts the process and its socket. Anything else —
or a process that already ended, or bad input, a cancel, a done row, a failed ``before`` tasklet —
kills its process group and removes its run directory before anything else runs
(:meth:`EarlyStart.close`); the run then starts as always. So an early start changes when a
container starts, never what runs. Only the lean ``run`` of a process's own command line starts
early (one Task at a time, not ``--skip-done``); ``LUTE_NO_EARLY_START=1`` turns it off.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence

from lute_kernel import launch_memo

if TYPE_CHECKING:
    import subprocess

    from lute_kernel.execution import ExecutionSettings
    from lute_kernel.ipc.server import IpcServer
    from lute_kernel.plan import LaunchPlan

EARLY_LAUNCHERS = ("direct", "srun")
"""Launchers whose launch may start before validation: a process on this node, or a step of the
Slurm allocation the command runs in (`srun` only inside one: never a job of its own)."""
STEP_STOP_GRACE_S = 10.0
"""A discarded Slurm step gets SIGTERM (srun ends the step's tasks on every node), then SIGKILL after this."""


def early_launcher(launcher: str, env: Mapping[str, str]) -> bool:
    """True when a launch by ``launcher`` with the spawn environment ``env`` may start before validation."""
    return launcher == "direct" or (launcher == "srun" and bool(env.get("SLURM_JOB_ID")))


class StartedLaunch:
    """A launch spawned early: its process, its socket, its run directory, and when it started."""

    def __init__(self, launch: Mapping[str, Any], run_dir: str, token: str) -> None:
        self.launch = launch
        self.run_dir = run_dir
        """Its path (a string: pathlib is not imported before the spawn)."""
        self.run_id = os.path.basename(run_dir)
        self.token = token
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.server: Optional[IpcServer] = None
        self.marks: Dict[str, float] = {}
        self.adopted = False
        """Set by the launch session that took it over (and cleans it up from then on)."""

    def spawn(self) -> None:
        """Spawn the launch with the environment the launch session would give it."""
        from lute_kernel.descendants import become_subreaper, run_started
        from lute_kernel.spawn import spawn_exec
        from lute_kernel.spawn_env import spawn_env

        launch = self.launch
        worker = {
            "endpoint": launch["ipc_endpoint"],
            "token": self.token,
            "server_key": "",  # a unix socket: no CURVE
            "max_bytes": str(launch["max_bytes"]),
        }
        env = spawn_env(launch["env"], launch["prefix"], self.run_id, worker)
        become_subreaper()
        self.marks["launch"] = self.marks["early_spawn"] = time.monotonic()
        self.proc = spawn_exec(launch["argv"], env, launch["cwd"])
        self.marks["spawned"] = time.monotonic()
        run_started(self.run_id, self.proc.pid)

    def start(self, private_dirs: Sequence[str]) -> bool:
        """Make the run directory, spawn, bind; False (and nothing left) when any of it fails."""
        from lute_kernel.run_dirs import make_run_dir

        try:
            make_run_dir(self.run_dir)
            for private in private_dirs:
                os.mkdir(os.path.join(self.run_dir, private), 0o700)
            self.spawn()
            self.bind()
        except Exception:  # an OSError, a LaunchError, a ZMQError...: no early start, the run starts as always
            self.discard()
            return False
        except BaseException:
            self.discard()
            raise
        return True

    def bind(self) -> None:
        """Bind the run's socket (while the container starts: the worker connects ~0.2 s later)."""
        from pathlib import Path

        from lute_kernel.ipc.server import IpcServer

        max_bytes = int(self.launch["max_bytes"])
        self.server = IpcServer(Path(self.run_dir), self.token, max_bytes=max_bytes, transport="ipc")

    def matches(self, plan: LaunchPlan, settings: ExecutionSettings) -> bool:
        """True when ``plan`` is exactly this launch and the process is still there to take over."""
        launch = self.launch
        return (
            self.proc is not None
            and self.server is not None
            and self.proc.poll() is None
            and settings.transport == "ipc"
            and early_launcher(plan.launcher, plan.env)
            and plan.launcher == launch.get("launcher")
            and plan.run_dir == self.run_dir
            and list(plan.argv) == list(launch["argv"])
            and plan.env == dict(launch["env"])
            and plan.cwd == launch["cwd"]
            and plan.ipc_endpoint == launch["ipc_endpoint"]
            and plan.task_env_prefix == launch["prefix"]
            and list(plan.private_dirs) == list(launch["private_dirs"])
            and settings.max_bytes == launch["max_bytes"]
            and not _forks(plan)
        )

    def discard(self) -> None:
        """Kill the process group, close the socket, remove the run directory (not once adopted)."""
        if self.adopted:
            return
        import shutil
        import signal

        from lute_kernel import deadman
        from lute_kernel.descendants import reaped, run_ended, sweep

        proc, self.proc = self.proc, None
        if proc is not None:
            if self.launch.get("launcher") == "srun":  # srun ends the step's tasks on every node on SIGTERM
                import subprocess

                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(STEP_STOP_GRACE_S)
                except subprocess.TimeoutExpired:  # SIGKILL below
                    pass
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
            reaped(proc.pid)
            deadman.release(proc.pid)
            run_ended(self.run_id)
            sweep(self.run_id)
        server, self.server = self.server, None
        if server is not None:
            from pathlib import Path

            from lute_kernel.ipc.server import SOCKET_NAME

            server.close(Path(self.run_dir) / SOCKET_NAME)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _forks(plan: LaunchPlan) -> bool:
    from lute_kernel.forked import can_fork

    return can_fork(plan.argv, plan.runtime)


def repeatable(plan: LaunchPlan, request: Optional[Dict[str, Any]], settings: ExecutionSettings) -> bool:
    """True when an early start could repeat this launch: a worker exec'd on this node over a unix socket."""
    return (
        request is not None
        and bool(plan.run_dir)
        and settings.transport == "ipc"
        and early_launcher(plan.launcher, plan.env)
        and not _forks(plan)
    )


def start_plan(
    plan: LaunchPlan, request: Optional[Dict[str, Any]], settings: ExecutionSettings
) -> Optional[StartedLaunch]:
    """Start ``plan`` now, before its run is asked for (a flow's next step); None when it cannot repeat or start.

    The run that follows prepares again with the same run directory (``run_dir_name``) and keeps
    this launch only when its plan is exactly this one (``StartedLaunch.matches``), as a command's
    early start does; the caller discards it otherwise.
    """
    if not repeatable(plan, request, settings):
        return None
    concrete = launch_memo.for_run_dir(_record(plan, settings), plan.run_dir)
    started = StartedLaunch(concrete, plan.run_dir, _token())
    if not started.start(plan.private_dirs):
        return None
    return started


def _record(plan: LaunchPlan, settings: ExecutionSettings) -> Dict[str, Any]:
    return launch_memo.launch_record(
        launcher=plan.launcher,
        argv=plan.argv,
        env=plan.env,
        cwd=plan.cwd,
        run_dir=plan.run_dir,
        ipc_endpoint=plan.ipc_endpoint,
        prefix=plan.task_env_prefix,
        private_dirs=plan.private_dirs,
        max_bytes=settings.max_bytes,
    )


class EarlyStart:
    """One command's early start: what it started (if anything), and the memo it keeps for the next run."""

    def __init__(self, key: Optional[str], env: Mapping[str, str]) -> None:
        self.key, self.env = key, env
        """``key`` None: the command could not be named (no working folder): nothing is started or kept."""
        self.started: Optional[StartedLaunch] = None

    @classmethod
    def begin(cls, argv: Sequence[str], env: Optional[Mapping[str, str]] = None) -> EarlyStart:
        """Start the launch this command line made last time, when it was kept and its config file is unchanged."""
        env = os.environ if env is None else env
        if not launch_memo.enabled(env):
            return cls(None, env)
        try:  # an optimisation: whatever fails here (no working folder, say), the run starts as always
            early = cls(launch_memo.command_key(argv, os.getcwd(), env), env)
            record = launch_memo.recall(early.key) if early.key is not None else None
        except Exception:
            return cls(None, env)
        if record is not None:
            early._start(record)
        return early

    def _start(self, record: Mapping[str, Any]) -> None:
        from lute_kernel.run_dirs import run_dir_name

        run_dir = os.path.join(record["run_root"], run_dir_name())
        started = StartedLaunch(launch_memo.for_run_dir(record, run_dir), run_dir, _token())
        if started.start(record["private_dirs"]):
            self.started = started

    @property
    def run_dir_name(self) -> Optional[str]:
        """The run directory's name the plan must use for the started launch to match (None: nothing started)."""
        return self.started.run_id if self.started is not None else None

    def take(self, plan: LaunchPlan, settings: ExecutionSettings) -> Optional[StartedLaunch]:
        """Return the started launch when ``plan`` is exactly it; else discard it (killed, folder gone): None."""
        started = self.started
        if started is None:
            return None
        if started.matches(plan, settings):
            return started
        self.close()
        return None

    def keep(
        self, config: str, plan: LaunchPlan, request: Optional[Dict[str, Any]], settings: ExecutionSettings
    ) -> None:
        """Keep this run's launch for the next run of the command (or forget the one kept, if it cannot repeat).

        Never raises: a launch that cannot be kept (no working folder any more, a full disk) is not kept.
        """
        if self.key is None or not launch_memo.enabled(self.env):
            return
        try:
            if not repeatable(plan, request, settings):
                launch_memo.forget(self.key)
                return
            launch_memo.remember(self.key, config, _record(plan, settings))
        except Exception:
            return

    def close(self) -> None:
        """Discard what was started unless a launch session adopted it."""
        started, self.started = self.started, None
        if started is not None:
            started.discard()


def _token() -> str:
    """The run token: what ``secrets.token_hex(16)`` returns (os.urandom), without importing secrets first."""
    return os.urandom(16).hex()
