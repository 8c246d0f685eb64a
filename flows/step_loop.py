"""The loop of one flow run: start steps as their trigger rules allow, wait for them, cancel them all.

Owns driving ``flows.scheduler`` with Prefect task runs (one per step, submitted as soon as its
upstream steps have ended, at most ``max_parallel`` at once, each step's retries as Prefect
retries), watching the flow run for cancellation in Prefect's API, cancelling every step on a
signal or such a cancellation (running ones through their backend, pending ones ended), and the
flow run's final state and table (an artifact). The flow itself is ``flows.lute_dag``.
"""

from __future__ import annotations

import queue
import signal
import threading
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from prefect.artifacts import create_table_artifact
from prefect.client.schemas.objects import State
from prefect.exceptions import TerminationSignal
from prefect.futures import PrefectFuture
from prefect.states import Cancelled, Completed, Failed

from flows.rules import NodeState
from flows.runtime import FlowEvent, FlowRuntime, PreparedFlow
from flows.scheduler import Change, Scheduler
from lute_kernel.flow_record import write_flow_record

_CANCEL = -1  # queue marker: the flow run was cancelled through the API


def run_steps(
    key: str, prepared: PreparedFlow, runtime: FlowRuntime, logger: Any, *, step_task: Any, in_cli: bool
) -> State[Any]:
    """Start steps (``step_task`` runs) as their rules allow, wait for them, and end the flow run's state.

    A termination signal cancels the steps and waits for them to end; then, in a process a worker
    started, it is raised again, so Prefect ends the run as the worker asked (Cancelled when it
    cancelled it). Under ``lute-kernel flow run`` (``in_cli``) the signal is the user's: the run
    ends Cancelled and the command exits 1.
    """
    scheduler = Scheduler(prepared.plan.graph, prepared.plan.unknown())
    _expect_next_steps(runtime, scheduler)
    done: queue.Queue[int] = queue.Queue()
    futures: Dict[int, PrefectFuture[Any]] = {}
    ready: List[Any] = []
    active: set[int] = set()
    watch = _CancelWatch(runtime, done, prepared.site.flows.poll_seconds)
    cancelled_by = ""
    signalled: Optional[BaseException] = None
    try:
        while True:
            starting, changes = scheduler.decide()
            _report(runtime, changes, logger)
            ready += starting
            while ready and len(active) < prepared.max_parallel:
                step = ready.pop(0)
                futures[step.id] = _submit(step_task, key, prepared, runtime, step, done)
                active.add(step.id)
            if scheduler.done:
                break
            finished = done.get()
            if finished == _CANCEL:
                cancelled_by = "the flow run was cancelled (Prefect API)"
                break
            active.discard(finished)
            _finish(runtime, scheduler, finished, futures[finished], logger)
    except (TerminationSignal, KeyboardInterrupt) as exc:
        signalled = exc
        cancelled_by = f"the flow received {_signal_name(exc)}"
    finally:
        watch.stop()
    if cancelled_by:
        signalled = _cancel(runtime, scheduler, futures, ready, active, done, cancelled_by, logger) or signalled
        if signalled is not None and not in_cli:
            raise signalled
    rows = _table(prepared, scheduler, runtime)
    _artifact(rows, prepared)
    failed = [row["step"] for row in rows if row["state"] in ("FAILED", "TIMEDOUT", "CANCELLED")]
    summary = {"status": "CANCELLED" if cancelled_by else ("FAILED" if failed else "COMPLETED"), "steps": rows}
    _record(prepared, runtime, rows, str(summary["status"]), logger)
    if cancelled_by:
        return Cancelled(message=cancelled_by, data=summary)
    if failed:
        return Failed(message=f"{len(failed)} step(s) did not complete: {', '.join(failed)}", data=summary)
    return Completed(message=f"{len(rows)} step(s): every step that ran completed", data=summary)


def _expect_next_steps(runtime: FlowRuntime, scheduler: Scheduler) -> None:
    """Let a backend that can start the next step's launch early (local) ask the scheduler which it is."""
    expect_next = getattr(runtime.backend, "expect_next", None)
    if expect_next is None:
        return

    def next_request() -> Any:
        step = scheduler.upcoming()
        return runtime.request(step.id) if step is not None and runtime.task_of(step.id) else None

    expect_next(next_request)


def _submit(
    step_task: Any, key: str, prepared: PreparedFlow, runtime: FlowRuntime, step: Any, done: queue.Queue[int]
) -> Any:
    options = step_task.with_options(
        task_run_name=step.label,
        retries=prepared.retries(step.retries),
        retry_delay_seconds=prepared.retry_delay,
        retry_condition_fn=lambda _task, _run, _state: runtime.can_retry(step.id),
        tags=[runtime.request(step.id).task, prepared.backend] if prepared.site.flows.tag_steps else [],
    )
    future = options.submit(key, step.id, step.label, runtime.request(step.id).task)
    future.add_done_callback(lambda _future: done.put(step.id))
    return future


def _finish(runtime: FlowRuntime, scheduler: Scheduler, step_id: int, future: Any, logger: Any) -> None:
    result = runtime.results.get(step_id)
    if result is None:  # Prefect could not run the step at all
        state = future.state
        change = scheduler.finished(step_id, NodeState.FAILED, f"Prefect: {state.name}: {state.message}")
    else:
        change = scheduler.finished(step_id, result.status, result.reason)
    _report(runtime, [change], logger)


def _report(runtime: FlowRuntime, changes: List[Change], logger: Any) -> None:
    for change in changes:
        if change.state is NodeState.RUNNING:
            continue  # said by the step itself when an attempt starts (it may wait for max_parallel)
        result = runtime.results.get(change.step.id)
        task_name = runtime.task_of(change.step.id)
        if change.state is NodeState.SKIPPED:
            logger.info("%s skipped: %s", change.step.label, change.reason)
        elif change.state is NodeState.CANCELLED and result is None:
            logger.info("%s not started: %s", change.step.label, change.reason)
        runtime.observer(
            FlowEvent(
                "state",
                change.step.label,
                task_name or change.step.task_name,
                state=change.state,
                reason=change.reason,
                result=result if change.state.final else None,
                attempt=runtime.attempts.get(change.step.id, 0),
            )
        )


def _cancel(
    runtime: FlowRuntime,
    scheduler: Scheduler,
    futures: Dict[int, Any],
    ready: List[Any],
    active: set[int],
    done: queue.Queue[int],
    why: str,
    logger: Any,
) -> Optional[BaseException]:
    """Cancel every running step, end the pending ones, wait for the running ones; return a signal that came meanwhile.

    Prefect's SIGTERM handler stays in place (a worker's cancellation handshake needs it): a
    signal during the wait is caught, remembered, and the wait goes on.
    """
    logger.warning("%s: cancelling %d running step(s)", why, len(active))
    runtime.running.cancel_all(signal.SIGTERM)
    changes = [scheduler.finished(step.id, NodeState.CANCELLED, f"{why} before it started") for step in ready]
    _report(runtime, changes + scheduler.cancel_pending(f"{why} before it started"), logger)
    signalled: Optional[BaseException] = None
    while active:
        try:
            finished = done.get()
        except (TerminationSignal, KeyboardInterrupt) as exc:
            signalled = signalled or exc
            logger.warning("%s while cancelling: the steps are being stopped already", _signal_name(exc))
            continue
        if finished in active:
            active.discard(finished)
            _finish(runtime, scheduler, finished, futures[finished], logger)
    return signalled


def _signal_name(exc: BaseException) -> str:
    signum = exc.signal if isinstance(exc, TerminationSignal) else signal.SIGINT
    return signal.Signals(signum).name


class _CancelWatch:
    """Polls the flow run's state; when it is marked cancelling (UI, API), cancels the steps and wakes the loop."""

    def __init__(self, runtime: FlowRuntime, done: queue.Queue[int], interval: float) -> None:
        from prefect.runtime import flow_run

        self._stop = threading.Event()
        self._runtime, self._done, self._interval = runtime, done, interval
        self._id = flow_run.get_id()
        self._thread = threading.Thread(target=self._watch, name="lute-cancel-watch", daemon=True)
        if self._id:
            self._thread.start()

    def _watch(self) -> None:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            while not self._stop.wait(self._interval):
                try:
                    state = client.read_flow_run(self._id).state  # type: ignore[arg-type]
                except Exception:  # a server hiccup: look again next time
                    continue
                if state is not None and (state.is_cancelling() or state.is_cancelled()):
                    self._runtime.running.cancel_all(signal.SIGTERM)
                    self._done.put(_CANCEL)
                    return

    def stop(self) -> None:
        self._stop.set()


def _table(prepared: PreparedFlow, scheduler: Scheduler, runtime: FlowRuntime) -> List[Dict[str, Any]]:
    rows = []
    for step in prepared.plan.graph.steps:
        result = runtime.results.get(step.id)
        rows.append(
            {
                "step": step.label,
                "task": runtime.task_of(step.id) or step.task_name,
                "state": scheduler.states[step.id].value,
                "seconds": round(result.seconds, 2) if result else None,
                "row": result.row_id if result else None,
                "attempts": runtime.attempts.get(step.id, 0),
                "reason": scheduler.reasons.get(step.id, "")
                if not result or result.status is not NodeState.COMPLETED
                else "",
            }
        )
    return rows


def _record(prepared: PreparedFlow, runtime: FlowRuntime, rows: List[Dict[str, Any]], status: str, logger: Any) -> None:
    """Leave the flow run's record in its work_dir (``lute_kernel.flow_record``): the report draws its DAG."""
    steps = prepared.plan.graph.steps
    record = {
        "name": prepared.plan.graph.dag.path.name,
        "dag": str(prepared.plan.graph.dag.path),
        "backend": prepared.backend,
        "started": runtime.started.isoformat(timespec="seconds"),
        "ended": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "status": status,
        "steps": [
            {
                "id": step.id,
                "label": row["step"],
                "task": row["task"],
                "state": row["state"],
                "upstream": list(step.upstream),
                "rule": step.rule.value,
                "row": row["row"],
                "seconds": row["seconds"],
                "attempts": row["attempts"],
                "reason": row["reason"],
            }
            for step, row in zip(steps, rows)
        ],
    }
    try:
        write_flow_record(runtime.folder, record)
    except OSError as exc:  # the runs are in lute.db whatever happens here; only the report's DAG is lost
        logger.warning("could not write the flow's record in %s: %s", runtime.folder, exc)


def _artifact(rows: List[Dict[str, Any]], prepared: PreparedFlow) -> None:
    try:
        create_table_artifact(table=rows, description=f"lute-kernel flow {prepared.plan.graph.dag.path.name}")
    except Exception:  # the table is a convenience; the flow's state and lute.db are the record
        pass
