"""The warm kernel's server: import what ``run`` needs once, then serve (:mod:`.loop`) until stopped.

Owns taking the address (lock, socket), the preload, the fingerprint of what was imported, and
the server's end. Single-threaded (forking is only safe so, and the child's own fork fast start
needs it too). It never runs a Task or opens the DB itself: each child becomes the command
(:mod:`.child`) and runs the ordinary CLI.

- One server per address: a lock file held for the server's life; a socket left by a dead server
  is replaced. Only the same user may connect (``SO_PEERCRED``); anything else is closed unread.
- Every request is decoded strictly (:mod:`.protocol`); a bad one gets ``refused``, never a crash.
- Before each ``run`` the server checks that no file it imported changed (an edited kernel, an
  upgraded library): if one did it answers ``stale`` — the command runs cold — and stops serving
  (a detached server starts its replacement).
  Task modules are never imported here, so an edited Task is always run as it is now.
- If a command disappears (killed, its terminal closed) its child is sent SIGHUP: the run is
  cancelled and recorded, as for a cold kernel whose terminal closes.
- Stops after ``idle_timeout`` seconds without a command, on ``serve --stop``, or on SIGTERM,
  SIGINT or SIGHUP; children still running finish first (their commands are waiting for them).
"""

from __future__ import annotations

import fcntl
import gc
import importlib
import os
import socket
from typing import Callable, Optional, Sequence

from lute_kernel.warm.address import FLOWS, RUN, Address, bind_or_connect, make_private
from lute_kernel.warm.freshness import fingerprint
from lute_kernel.warm.loop import Loop, ServerState

PRELOAD = (
    "lute_kernel.cli.lean",
    "lute_kernel.cli.run_cmd",
    "lute_kernel.cli.progress",
    "lute_kernel.cli.messages",
    "lute_kernel.api",
    "lute_kernel.executor",
    "lute_kernel.worker",  # what a forked local-runtime worker imports
    "lute_kernel.registry",
    "lute_kernel.task_lookup",
    "lute_kernel.deadman",
    "lute_kernel.runtimes.local",
    "lute_kernel.runtimes.apptainer",
    "lute_kernel.launchers.direct",  # each runtime and launcher is imported when asked for
    "lute_kernel.launchers.srun",
    "lute_kernel.launchers.mpirun",
    "lute_kernel.db.records",
    "lute_kernel.db.writer",
    "lute_kernel.db.writer_process",  # the recorder calls the writer through it (here: in this process)
    "lute_kernel.db.recordable",
    "lute_kernel.db.liveness",
    "lute_kernel.images.lookup",
    "lute_kernel.images.sandbox",
    "lute_kernel.summaries",
    "lute_kernel.json_exact",  # what keeping a parse (or sending a row) checks first
    "lute_kernel.user_cache",  # where a kept parse is written
    "lute_kernel.launch_memo",  # a repeated run's early start (lute_kernel.early_launch)
    "lute_kernel.early_launch",
    "lute_kernel.templates",  # the files of Tasks that have templates (other runs never import it)
    "lute_kernel.cli.app",  # validate, explain, rerun: the typer app
    "lute_kernel.warm.child",  # what each child runs first (~3 ms when imported there)
    "importlib.resources.readers",  # what finding the packaged site profiles imports on first use
    "importlib.readers",  # and what that imports in turn
)
"""What a ``run`` imports on its way (measured: every kernel module of a local and an apptainer run), and the typer
app of the other commands a warm kernel serves (``lute_kernel.cli.WARM_COMMANDS``)."""

FLOW_PRELOAD = (
    "prefect",
    "prefect.flows",
    "prefect.tasks",
    "prefect.task_runners",
    "prefect.logging.configuration",
    "flows.lute_dag",
    "flows.runtime",
    "flows.local_hooks",
    "flows.deployments",
    "flows.backends.local",
    "flows.backends.node_server",
    "lute_kernel.cli.flow",
    "lute_kernel.cli.flow_common",
    "lute_kernel.cli.flow_display",
    # What a flow run imports on its way (measured: every module imported after the above by a
    # 1-node flow): Prefect's engines, its parameter encoding (FastAPI's), its graph support.
    "prefect.engine",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.concurrency.sync",
    "prefect.concurrency.v1.context",
    "prefect.telemetry.run_telemetry",
    "prefect.utilities.visualization",
    "prefect._internal.control_listener",
    "prefect._internal.attempt_control",
    "fastapi.encoders",
    "anyio._backends._asyncio",
    "anyio.streams.memory",
    "anyio.streams.stapled",
    "anyio.streams.tls",
    "opentelemetry.metrics",
    "opentelemetry._logs",
    "pydantic.color",
    "rich._emoji_codes",
    "typer._click.decorators",
    "typer._adapters",
    "http.cookies",
    "encodings.idna",
)
"""What ``flow run`` imports besides the ``run`` path (``serve --flows``): Prefect (~1.5-2 s), the flow modules."""

DEFAULT_IDLE_TIMEOUT = 1800.0


class AlreadyServing(Exception):
    """Another server holds this address."""


def listen(where: Address) -> tuple[socket.socket, int]:
    """Take the address (lock, socket); return the listening socket and the lock's descriptor."""
    make_private(where.directory)
    lock = os.open(where.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        raise AlreadyServing(f"a warm kernel already serves at {where.socket}") from None
    try:
        os.unlink(where.socket)  # a dead server's: we hold the lock, so no live server owns it
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    bind_or_connect(listener, where.socket, bind=True)
    os.chmod(where.socket, 0o600)
    listener.listen(64)
    return listener, lock


def preload(kind: str = RUN) -> None:
    """Import what a ``run`` (``kind`` FLOWS: a ``flow run``) needs; what cannot be imported is left to the command."""
    for name in (*PRELOAD, *(FLOW_PRELOAD if kind == FLOWS else ())):
        try:
            importlib.import_module(name)
        except Exception:  # ImportError, or a library that fails at import: the command meets it itself
            pass
    warm_caches()


def warm_caches() -> None:
    """Fill the caches a command's first validation fills, where their keys make them right for any command.

    The task index file as last read (kept with the file's stamp: a command whose cache is another
    file, or a newer one, reads its own), the Task entry points (keyed by the ``sys.path`` folders'
    times, and ``sys.path`` is part of the server's key) and the env-allowlist matchers of this
    environment's site profile (keyed by their patterns). ~10 ms of each command's validation;
    nothing here reads the command's environment, so a command never sees the server's. Warming is
    best effort: whatever fails is left to the command.
    """
    try:
        from lute_kernel.registry import ENTRY_POINT_GROUP
        from lute_kernel.runtimes.apptainer import SPAWN_ENV_ALLOWLIST
        from lute_kernel.runtimes.base import allowed_env
        from lute_kernel.sites import load_site
        from lute_kernel.task_index import cached_entry_points

        cached_entry_points(ENTRY_POINT_GROUP)
        site = load_site(None)
        for patterns in (site.env_allowlist, SPAWN_ENV_ALLOWLIST, site.apptainer.gpu_env):
            allowed_env({}, patterns)
    except Exception:  # an optimisation: the command does it itself
        pass


def serve(
    where: Address,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ready: Optional[Callable[[], None]] = None,
    restart: Optional[Sequence[str]] = None,
    restart_cwd: Optional[str] = None,
    kind: str = RUN,
) -> int:
    """Serve commands at ``where`` until stopped; call ``ready`` once commands may connect. Returns 0.

    ``kind``: what to import first (``RUN``, or ``FLOWS`` for ``flow run``: Prefect too).

    ``restart``: the command line (run in ``restart_cwd``) that starts a server like this one; run when this one's code
    changed (a detached server replaces itself, so the next command is warm again).
    """
    listener, lock = listen(where)
    loop = Loop(listener, lock, ServerState(where, idle_timeout), {})
    loop.restart = list(restart) if restart else None
    loop.restart_cwd = restart_cwd
    try:
        preload(kind)
        loop.snapshot = fingerprint()
        gc.collect()
        gc.freeze()  # what the children inherit: never walked by their collections, pages stay shared
        return loop.run(ready)
    finally:
        loop.stop_accepting()  # the socket and the lock go first: a new server may start at once


__all__ = ["DEFAULT_IDLE_TIMEOUT", "FLOW_PRELOAD", "PRELOAD", "AlreadyServing", "listen", "preload", "serve"]
