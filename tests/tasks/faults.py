"""Test-only Tasks that misbehave on purpose: sleep past timeouts, crash, leave children, send too much."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from lute_kernel.parameters import TaskParameters, param
from lute_kernel.task import Task
from lute_kernel.tasklets import Tasklet


class FaultSleep(Task):
    """Sleeps (optionally after starting a child that would outlive it)."""

    image = "smoke"

    class Parameters(TaskParameters):
        seconds: float = param(30.0, "How long to sleep.")
        spawn_child: bool = param(False, "Start a long `sleep` child first and log its pid.")
        ignore_sigterm: bool = param(False, "Ignore SIGTERM (forces the SIGKILL path).")

    def run(self) -> None:
        params = self.params
        assert isinstance(params, FaultSleep.Parameters)
        if params.ignore_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if params.spawn_child:
            child = subprocess.Popen(["sleep", "300"])
            self.log.info("child pid %d", child.pid)
        self.log.info("sleeping %s s", params.seconds)
        self.progress(0, 1, "started")
        time.sleep(params.seconds)
        self.result.summary = "slept"


class FaultKillSelf(Task):
    """Kills its own process with SIGKILL after one log line."""

    image = "smoke"

    def run(self) -> None:
        self.log.info("about to die")
        os.kill(os.getpid(), signal.SIGKILL)


class FaultExit(Task):
    """Leaves with os._exit(code) without reporting a result."""

    class Parameters(TaskParameters):
        code: int = param(0, "Exit code.")

    def run(self) -> None:
        params = self.params
        assert isinstance(params, FaultExit.Parameters)
        os._exit(params.code)


class FaultBigMessage(Task):
    """Sends one array of `nbytes` bytes as progress data."""

    class Parameters(TaskParameters):
        nbytes: int = param(1024, "Array size in bytes.")

    def run(self) -> None:
        import numpy as np

        params = self.params
        assert isinstance(params, FaultBigMessage.Parameters)
        self.progress(1, 1, "big", data=np.zeros(params.nbytes, dtype=np.uint8))
        self.result.summary = "sent"


class WithTasklets(Task):
    """Writes a file into `outdir`; a 'before' tasklet makes outdir, an 'after' tasklet counts lines."""

    before = (Tasklet("lute_kernel.builtin_tasklets:make_dirs", ("{{ outdir }}",)),)
    after = (Tasklet("lute_kernel.builtin_tasklets:count_lines", ("{{ outdir }}/out.txt",)),)

    class Parameters(TaskParameters):
        outdir: str = param(..., "Folder to write into (made by the 'before' tasklet).")
        lines: int = param(3, "Lines to write.")

    def run(self) -> None:
        params = self.params
        assert isinstance(params, WithTasklets.Parameters)
        with open(os.path.join(params.outdir, "out.txt"), "w") as handle:
            handle.write("x\n" * params.lines)
        self.result.summary = {"wrote": params.lines}


class FaultEscape(Task):
    """Starts a descendant that leaves the run's process group (setsid, or a double fork), then finishes."""

    image = "smoke"

    class Parameters(TaskParameters):
        how: str = param("setsid", "'setsid' (a new session) or 'double_fork' (orphaned grandchild).")
        clear_env: bool = param(False, "Start the escapee with an empty environment (no run marker).")
        seconds: float = param(0.0, "Sleep this long after starting it (e.g. to be timed out).")

    def run(self) -> None:
        params = self.params
        assert isinstance(params, FaultEscape.Parameters)
        env = {} if params.clear_env else None
        read_fd, write_fd = os.pipe()
        # A unique argv (`sleep 300.<digits>`), so a test outside a container's PID namespace finds it.
        argv = ["sleep", f"300.{int.from_bytes(os.urandom(4), 'big')}"]
        self.log.info("escapee argv %s", " ".join(argv))
        if params.how == "setsid":
            child = subprocess.Popen(argv, start_new_session=True, env=env)
            pid = child.pid
        else:
            middle = os.fork()
            if middle == 0:  # pragma: no cover - child
                os.setsid()
                grandchild = os.fork()
                if grandchild == 0:
                    os.execvpe("sleep", argv, env if env is not None else os.environ)
                os.write(write_fd, str(grandchild).encode())
                os._exit(0)
            os.waitpid(middle, 0)
            pid = int(os.read(read_fd, 32))
        self.log.info("escapee pid %d", pid)
        time.sleep(params.seconds)
        self.result.summary = "escaped"


class FaultOutput(Task):
    """Writes `megabytes` MB to stdout, in lines of `line_bytes` bytes (0: no newline at all)."""

    class Parameters(TaskParameters):
        megabytes: int = param(64, "How much to write.")
        line_bytes: int = param(0, "Bytes per line; 0 writes no newline.")

    def run(self) -> None:
        params = self.params
        assert isinstance(params, FaultOutput.Parameters)
        chunk = b"x" * (1 << 20)
        if params.line_bytes:
            line = b"y" * (params.line_bytes - 1) + b"\n"
            chunk = line * max(1, (1 << 20) // params.line_bytes)
        out = os.fdopen(1, "wb", buffering=0, closefd=False)
        written = 0
        while written < params.megabytes << 20:
            written += out.write(chunk) or 0
        self.result.summary = {"written": written}


class FaultSegfault(Task):
    """Dereferences NULL: the process dies of SIGSEGV."""

    def run(self) -> None:
        import ctypes

        self.log.info("about to segfault")
        ctypes.string_at(0)


class FaultMemory(Task):
    """Allocates until it runs out: with `limit_mb` set, under that address-space limit (an OOM)."""

    class Parameters(TaskParameters):
        limit_mb: int = param(1024, "RLIMIT_AS of the Task's process (0: none — careful).")
        allocate_mb: int = param(4096, "How much to try to hold.")

    def run(self) -> None:
        import resource

        params = self.params
        assert isinstance(params, FaultMemory.Parameters)
        if params.limit_mb:
            limit = params.limit_mb << 20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        held = []
        for _ in range(params.allocate_mb):
            held.append(bytearray(1 << 20))
        self.result.summary = {"held_mb": len(held)}
