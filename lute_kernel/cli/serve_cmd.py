"""``lute-kernel serve``: start, stop or look at this installation's warm kernel (:mod:`lute_kernel.warm`)."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Annotated, Optional

import typer

from lute_kernel.cli.messages import print_error
from lute_kernel.errors import EXIT_BAD_INPUT, EXIT_OK
from lute_kernel.warm.address import FLOWS, RUN, Address, UnsafeDirectory, address, make_private

IdleOption = Annotated[
    float,
    typer.Option("--idle-timeout", min=1.0, help="Stop after this many seconds without a command."),
]


def serve(
    detach: Annotated[
        bool, typer.Option("--detach", help="Serve in the background (log in the server's directory).")
    ] = False,
    stop: Annotated[
        bool, typer.Option("--stop", help="Ask the running server to stop (its running commands finish).")
    ] = False,
    status: Annotated[bool, typer.Option("--status", help="Say whether a server runs, and what it has done.")] = False,
    idle_timeout: IdleOption = 1800.0,
    flows: Annotated[
        bool,
        typer.Option(
            "--flows",
            help="The warm kernel of `flow run` instead (Prefect imported too; a server of its own): with"
            " --detach, --stop and --status as well.",
        ),
    ] = False,
) -> None:
    """Keep a warm kernel: `run`, `validate`, `explain`, `rerun` (--flows: `flow run`) start with the imports paid.

    Opt-in and per user, interpreter, Python path and Slurm job (a flows server also per Prefect
    environment: PREFECT_*, HOME); a command without a server (or with LUTE_WARM=0) runs cold as
    always, with the same rows, output and exit codes either way.
    """
    kind = FLOWS if flows else RUN
    where = address(kind=kind)
    if stop or status:
        raise typer.Exit(_ask(where, "stop" if stop else "status", kind))
    try:
        make_private(where.directory)
    except (OSError, UnsafeDirectory) as exc:
        print_error(str(exc))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    raise typer.Exit(_detached(where, idle_timeout, kind) if detach else _foreground(where, idle_timeout, kind))


def _foreground(where: Address, idle_timeout: float, kind: str) -> int:
    from lute_kernel.warm.server import AlreadyServing
    from lute_kernel.warm.server import serve as run_server

    def ready() -> None:
        print(
            f"lute-kernel: warm kernel serving at {where.socket} (pid {os.getpid()}, idle timeout {idle_timeout:g} s)",
            flush=True,
        )

    try:
        return run_server(where, idle_timeout, ready, kind=kind)
    except AlreadyServing as exc:
        print_error(str(exc))
        return EXIT_BAD_INPUT


def _detached(where: Address, idle_timeout: float, kind: str) -> int:
    """Start the server as a daemon (new session, stdio to its log); return once it serves or failed."""
    read_end, write_end = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the daemon, tested end to end
        code = 1
        try:
            os.close(read_end)
            os.setsid()
            if os.fork():
                os._exit(0)
            code = _daemon(where, idle_timeout, write_end, kind)
        finally:
            os._exit(code)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as reader:
        said = reader.read().decode(errors="replace")
    if not said.startswith("ok "):
        print_error(said.strip() or f"the warm kernel did not start (see {where.log})")
        return EXIT_BAD_INPUT
    print(
        f"lute-kernel: warm kernel serving at {where.socket} ({_about(said.split()[1], idle_timeout)}; log {where.log})"
    )
    return EXIT_OK


def _daemon(where: Address, idle_timeout: float, report: int, kind: str) -> int:  # pragma: no cover - the daemon
    from lute_kernel.warm.server import AlreadyServing
    from lute_kernel.warm.server import serve as run_server

    log = os.open(where.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    print(
        f"{time.strftime('%Y-%m-%dT%H:%M:%S')} lute-kernel serve: pid {os.getpid()}, idle timeout {idle_timeout:g} s",
        flush=True,
    )

    def ready() -> None:
        os.write(report, f"ok {os.getpid()}".encode())
        os.close(report)

    restart = [sys.executable, *sys.orig_argv[1:]]  # this very command: same interpreter, path and options
    started_in = os.getcwd()  # where it ran (`python -m` puts that on sys.path, and so in the key; a relative
    # PYTHONPATH entry means it too): the daemon stays there, and its replacement starts there
    try:
        return run_server(where, idle_timeout, ready, restart=restart, restart_cwd=started_in, kind=kind)
    except AlreadyServing as exc:
        os.write(report, str(exc).encode())
        return EXIT_BAD_INPUT
    except Exception as exc:  # said to the starting command (if it still listens) and kept in the log
        import traceback

        traceback.print_exc()
        try:
            os.write(report, f"the warm kernel failed: {type(exc).__name__}: {exc} (see {where.log})".encode())
        except OSError:
            pass
        return 1
    finally:
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} lute-kernel serve: stopped", flush=True)


def _about(pid: object, idle_timeout: float) -> str:
    return f"pid {pid}, idle timeout {idle_timeout:g} s"


def _ask(where: Address, op: str, kind: str) -> int:
    from lute_kernel.warm.client import connect
    from lute_kernel.warm.protocol import MAX_PACKET, ProtocolError, decode_reply, encode

    sock = connect(kind)
    if sock is None:
        what = "no warm kernel of `flow run` serves" if kind == FLOWS else "no warm kernel serves"
        print(f"lute-kernel: {what} this installation (would listen at {where.socket})")
        return 1 if op == "status" else EXIT_OK
    with sock:
        try:
            sock.send(encode({"op": op}))
            reply: Optional[dict[str, object]] = decode_reply(sock.recv(MAX_PACKET))
        except (OSError, ProtocolError):
            reply = None
    if reply is None:
        print_error("the warm kernel did not answer")
        return 1
    if op == "stop":
        print(f"lute-kernel: warm kernel stopping ({reply.get('running', 0)} command(s) still running finish first)")
        return EXIT_OK
    if not sys.stdout.isatty():
        print(json.dumps(reply, sort_keys=True))
        return EXIT_OK
    started = float(reply.get("started", 0) or 0)  # type: ignore[arg-type]
    print(
        f"lute-kernel: warm kernel pid {reply.get('pid')} at {reply.get('socket')}: up {time.time() - started:.0f} s,"
        f" {reply.get('served')} command(s) served, {reply.get('running')} running,"
        f" idle timeout {reply.get('idle_timeout')} s"
    )
    return EXIT_OK


__all__ = ["serve"]
