"""The ``local`` backend: each step is one kernel run on this host (``lute_kernel.api``), streamed live.

Owns running a step through the node server (``flows.backends.node_server``: a kernel forked per
step from a single-threaded process, so the local runtime's fork fast start stays on) or, with
``LUTE_FLOW_NODE_SERVER=0``, in the calling thread (``prepare`` + ``run_prepared``, which then
execs the worker). Either way cancellation is the kernel's (a CancelToken, or SIGTERM to the
step's kernel): the Task is stopped and its row recorded CANCELLED. With ``--runtime apptainer``
the Task still runs in its image.
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

from flows.backends.base import LineSink, NodeRequest, NodeResult, RunningNodes
from flows.backends.node_server import NodeServer, run_lines
from flows.rules import NodeState


class LocalBackend:
    """Runs steps through a node server (default) or in the calling thread."""

    name = "local"

    def __init__(self, server: Optional[NodeServer] = None, *, in_thread: Optional[bool] = None) -> None:
        if in_thread is None:
            in_thread = os.environ.get("LUTE_FLOW_NODE_SERVER", "1") == "0"
        self.in_thread = in_thread
        self._server = server
        self._own_server = False
        self._next_step: Optional[Callable[[], Optional[NodeRequest]]] = None

    def _node_server(self) -> NodeServer:
        if self._server is None:
            self._server = NodeServer.spawn()  # a process with threads already: exec, never fork
            self._own_server = True
        return self._server

    def run(self, request: NodeRequest, on_line: LineSink, running: RunningNodes, key: str) -> NodeResult:
        """Run the step's Task to its end (recorded in lute.db) and return how it ended."""
        if self.in_thread:
            return _run_in_thread(request, on_line, running, key)
        started = time.monotonic()
        server = self._node_server()
        run_id, stream, _pid = server.start(wire(request))
        self._expect_next(server, request)
        running.add(key, lambda signum: server.cancel(run_id, signum))
        try:
            final = run_lines(stream, lambda event: on_line(*_line_of(event)))
        finally:
            running.remove(key)
            stream.close()
        return result_from_line(request.task, final, time.monotonic() - started)

    def expect_next(self, next_step: Callable[[], Optional[NodeRequest]]) -> None:
        """Tell the backend how to find the step the flow will run next (the flow's scheduler knows).

        Each time a step has started, that step's launch is started too, while this one runs
        (``NodeServer.expect``): a flow of short steps then pays no container start between them.
        """
        self._next_step = next_step

    def _expect_next(self, server: NodeServer, started: NodeRequest) -> None:
        if self._next_step is None:
            return
        try:
            upcoming = self._next_step()
        except Exception:  # a guess: never the step's problem
            return
        if upcoming is not None and upcoming != started:
            server.expect(wire(upcoming))

    def close(self) -> None:
        """Stop the node server this backend started (a server handed in is its owner's to close)."""
        if self._own_server and self._server is not None:
            self._server.close()
            self._server = None


def wire(request: NodeRequest) -> Dict[str, Any]:
    """A step's request as the node server takes it (and as a spare compares it with the step it expects)."""
    return {
        "task": request.task,
        "config": request.config,
        "site": request.site,
        "runtime": request.runtime,
        "host_env": dict(request.host_env),
    }


PROGRESS = "PROGRESS"
"""The level of a progress line: the flow's display draws a bar of it (``done/total message``)."""


def _line_of(event: Dict[str, Any]) -> Tuple[str, str]:
    """Return (level, text) of one event of a step: progress as ``PROGRESS``, ``"3/10 message"``."""
    if event.get("event") == "progress" and isinstance(event.get("done"), (int, float)):
        total = event.get("total")
        count = f"{event['done']:g}/{total:g}" if isinstance(total, (int, float)) else f"{event['done']:g}"
        return PROGRESS, f"{count} {event.get('message', '')}".rstrip()
    return str(event.get("level", "INFO")), _event_text(event)


def _event_text(event: Dict[str, Any]) -> str:
    rank = f"[{event.get('rank')}] " if event.get("rank") else ""
    kind = event.get("event")
    text = str(event.get("text", ""))
    if kind == "log":
        return f"{rank}{text}"
    if kind == "status":
        return f"lute-kernel: {text}"
    return f"{rank}{kind}: {text}"


def result_from_line(task: str, final: Optional[Dict[str, Any]], seconds: float) -> NodeResult:
    """Turn a run's last JSON line into a NodeResult (no line: the step's kernel died)."""
    if final is None:
        return NodeResult(NodeState.FAILED, task, seconds=seconds, reason="the step's kernel process died")
    kind = final.get("kind")
    if kind == "outcome":
        return NodeResult(
            status=NodeState(final["status"]),
            task=str(final.get("task", task)),
            row_id=final.get("row_id"),
            db=str(final.get("db", "")),
            summary=final.get("summary", ""),
            payload=final.get("payload"),
            seconds=float(final.get("seconds", seconds)),
            reason=str(final.get("reason") or final.get("not_recorded") or ""),
            exit_code=final.get("exit_code"),
            extra={"phases": _phases(final.get("phases"))},
        )
    if kind == "cancelled":
        return NodeResult(NodeState.CANCELLED, task, seconds=seconds, reason=str(final.get("message", "")))
    prefix = "bad input: " if kind == "input_error" else ""
    return NodeResult(NodeState.FAILED, task, seconds=seconds, reason=prefix + str(final.get("message", "")))


def _phases(value: Any) -> Dict[str, float]:
    """A step's ``{phase: ms}`` from its kernel's line, keeping only names with finite numbers."""
    if not isinstance(value, dict):
        return {}
    kept = {}
    for name, ms in value.items():
        number = _milliseconds(ms)
        if number is not None:
            kept[str(name)] = number
    return kept


def _milliseconds(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float (JSON allows it)
        return None
    return number if math.isfinite(number) else None


def _run_in_thread(request: NodeRequest, on_line: LineSink, running: RunningNodes, key: str) -> NodeResult:
    """The kernel API in this thread: same run, same record; the worker is exec'd (this process has threads)."""
    from lute_kernel.api import prepare, run_prepared
    from lute_kernel.cancel import CancelToken
    from lute_kernel.errors import InputError, LuteError
    from lute_kernel.summaries import payload_for_db

    started = time.monotonic()
    cancel = CancelToken()
    guard = threading.Lock()
    closed = [False]

    def cancel_node(signum: int) -> None:
        with guard:  # never write to the token's pipe after it is closed (its fd may be reused)
            if not closed[0]:
                cancel.cancel(signum)

    running.add(key, cancel_node)
    try:
        prepared = prepare(
            request.task, request.config, site=request.site, runtime=request.runtime, host_env=request.host_env
        )

        def on_event(event: Any) -> None:
            wire = {"event": event.kind, "text": event.text, "rank": event.rank, "level": event.level}
            if event.kind == "progress":
                wire.update(done=event.done, total=event.total, message=event.message)
            on_line(*_line_of(wire))

        outcome = run_prepared(prepared, on_event=on_event, cancel=cancel)
    except InputError as exc:
        return NodeResult(
            NodeState.FAILED, request.task, seconds=time.monotonic() - started, reason=f"bad input: {exc}"
        )
    except LuteError as exc:
        return NodeResult(NodeState.FAILED, request.task, seconds=time.monotonic() - started, reason=str(exc))
    finally:
        running.remove(key)
        with guard:
            closed[0] = True
            cancel.close()
    return NodeResult(
        status=NodeState(outcome.status.value),
        task=outcome.task_name,
        row_id=outcome.row_id,
        db=str(outcome.db_path),
        summary=payload_for_db(outcome.summary),
        payload=payload_for_db(outcome.payload),
        seconds=outcome.seconds,
        reason=outcome.reason or outcome.not_recorded,
        exit_code=outcome.exit_code,
        extra={"phases": outcome.timeline.step_phases()},
    )
