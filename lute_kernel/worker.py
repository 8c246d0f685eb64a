"""The entry point inside the Task's process: ``python -m lute_kernel.worker``.

Connects to the kernel's socket (``LUTE_IPC_ENDPOINT``; ``LUTE_IPC_SERVER_KEY`` for CURVE over
TCP), puts the run token (``LUTE_IPC_TOKEN``) in front of every message, says hello with its rank,
receives the validated parameters, re-validates them (worker context: host-only checks skipped),
runs the Task, and streams log/progress/result/error then bye. Depends on pyzmq and
pydantic only, and uses Python 3.9 syntax: it runs inside every image.

Exit codes: 0 the Task completed; 1 the Task raised; 3 the protocol failed (no parameters, bad frames).
"""

from __future__ import annotations

import gc
import logging
import os
import platform
import sys
import traceback
from typing import Any, Dict, Optional

from lute_kernel.pydantic_plugins import skip_lookup_when_none

skip_lookup_when_none()  # before the imports below build pydantic's first validator: ~20 ms of every container

import zmq  # noqa: E402

from lute_kernel.errors import ProtocolError  # noqa: E402
from lute_kernel.figures import figure_messages, split_plots  # noqa: E402
from lute_kernel.ipc.client import IpcClient  # noqa: E402
from lute_kernel.ipc.protocol import DEFAULT_MAX_BYTES  # noqa: E402
from lute_kernel.parameters import WORKER_CONTEXT  # noqa: E402
from lute_kernel.registry import import_task  # noqa: E402
from lute_kernel.task import Reporter, Task, TaskStatus  # noqa: E402

EXIT_COMPLETED = 0
EXIT_TASK_RAISED = 1
EXIT_PROTOCOL = 3
PARAMS_TIMEOUT_MS = 60_000


class IpcReporter(Reporter):
    """Sends a Task's progress (and any arrays with it) to the kernel."""

    def __init__(self, client: IpcClient) -> None:
        self.client = client

    def progress(self, done: float, total: Optional[float], message: str, data: Any = None) -> None:
        """Send a progress message."""
        body: Dict[str, Any] = {"done": done, "total": total, "message": message}
        if data is not None:
            body["data"] = data
        self.client.send("progress", body)


class IpcLogHandler(logging.Handler):
    """Forwards Python ``logging`` records from the Task to the kernel."""

    def __init__(self, client: IpcClient) -> None:
        super().__init__()
        self.client = client

    def emit(self, record: logging.LogRecord) -> None:
        """Send one record as a ``log`` message.

        Without the record's ``time`` (the schema still allows it): the kernel never read it, a
        message reaches it within milliseconds, and the float's shortest repr was ~40% of the
        cost of encoding a log line (P3, issue 11).
        """
        try:
            self.client.send(
                "log",
                {"level": record.levelname, "logger": record.name, "message": self.format(record)},
            )
        except Exception:  # logging must never take the Task down
            self.handleError(record)


def _rank() -> int:
    for name in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"):
        value = os.environ.get(name)
        if value is not None and value.isdigit():
            return int(value)
    return 0


def _run_task(client: IpcClient, request: Dict[str, Any]) -> int:
    cls = import_task(request.get("tasks_dir"), request["module"], request["class"])
    params = cls.Parameters.model_validate(request["params"], context=WORKER_CONTEXT)
    task: Task = cls(params, IpcReporter(client))
    task.run()
    result = task.result
    if result.task_status in (TaskStatus.RUNNING, TaskStatus.PENDING):
        result.task_status = TaskStatus.COMPLETED
    if client.rank != 0:  # rank 0 reports the Task's result; the others only finish
        return EXIT_COMPLETED if result.task_status == TaskStatus.COMPLETED else EXIT_TASK_RAISED
    summary, in_summary = split_plots(result.summary)  # upstream Tasks return plots as summary/payload
    payload, in_payload = split_plots(result.payload)
    body: Dict[str, Any] = {
        "task_status": result.task_status,
        "summary": "" if summary is None and in_summary else summary,
        "payload": payload,
        "impl_schemas": result.impl_schemas,
    }
    figures = figure_messages([*result.figures, *in_summary, *in_payload])
    if figures:
        body["figures"] = figures
    client.send("result", body)
    return EXIT_COMPLETED if result.task_status == TaskStatus.COMPLETED else EXIT_TASK_RAISED


def _abort_mpi_job(client: IpcClient) -> None:
    """If the Task used MPI with other ranks, end them all: they may be waiting on this one."""
    mpi = sys.modules.get("mpi4py.MPI")
    world = getattr(mpi, "COMM_WORLD", None) if mpi is not None else None
    if world is not None and world.Get_size() > 1:
        client.send("bye", {"exit_code": EXIT_TASK_RAISED})
        client.close()  # flush the error and bye first: Abort does not return
        world.Abort(EXIT_TASK_RAISED)


def _connect(endpoint: str) -> IpcClient:
    """The client for this rank, from the variables the kernel set (never argv: the token is secret)."""
    max_bytes = os.environ.get("LUTE_IPC_MAX_BYTES", "")
    return IpcClient(
        endpoint,
        token=os.environ.get("LUTE_IPC_TOKEN", ""),
        rank=_rank(),
        max_bytes=int(max_bytes) if max_bytes.isdigit() else DEFAULT_MAX_BYTES,
        server_key=os.environ.get("LUTE_IPC_SERVER_KEY") or None,
    )


def main() -> int:
    """Run one Task as directed by the kernel; return the process exit code."""
    endpoint = os.environ.get("LUTE_IPC_ENDPOINT")
    if not endpoint:
        print(
            "lute_kernel.worker: LUTE_IPC_ENDPOINT is not set; the kernel starts this",
            file=sys.stderr,
        )
        return EXIT_PROTOCOL
    try:
        client = _connect(endpoint)
    except (ProtocolError, ValueError, zmq.ZMQError) as exc:
        print(f"lute_kernel.worker: cannot connect to the kernel: {exc}", file=sys.stderr)
        return EXIT_PROTOCOL
    handler = IpcLogHandler(client)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    code = EXIT_PROTOCOL
    # The exit's final garbage collections walk every object alive (~25 ms in a container, and more
    # with a science stack): what exists now — the kernel, pydantic, pyzmq — lives to the end anyway,
    # so it is frozen out of them. Frozen before the Task's module is imported: what the Task makes
    # is still collected, and finalised (files flushed) at exit, as before.
    gc.freeze()
    try:
        client.send("hello", {"pid": os.getpid(), "python": platform.python_version()})
        request = client.receive(PARAMS_TIMEOUT_MS)
        if request.kind != "params":
            raise RuntimeError(f"expected params, got {request.kind}")
        try:
            code = _run_task(client, request.body)
        except BaseException as exc:  # report every failure, including KeyboardInterrupt/SystemExit
            client.send(
                "error",
                {
                    "type": type(exc).__name__,
                    "message": str(exc),
                    "traceback": traceback.format_exc(),
                },
            )
            code = EXIT_TASK_RAISED
            _abort_mpi_job(client)
        client.send("bye", {"exit_code": code})
    except Exception as exc:
        print(f"lute_kernel.worker: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = EXIT_PROTOCOL
    finally:
        root.removeHandler(handler)
        client.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
