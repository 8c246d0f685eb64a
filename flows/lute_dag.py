"""The Prefect flow ``lute_dag``: an upstream LUTE DAG file run as one flow, one Prefect task per step.

Owns the Prefect side only: the flow's parameters, one task run per step (named after it, its
Task as a tag, retries as Prefect retries — a new DB row each — and never persisted results or
input hashing), the loop that starts steps as their trigger rules allow (``flows.scheduler``),
bounded by ``max_parallel``, and cancellation: a SIGTERM/SIGINT to this process (Ctrl-C, scancel
of the flow's own job, a worker cancelling it) or the flow run marked cancelling in Prefect's
API cancels every running step through its backend, ends the pending ones, and the flow run ends
Cancelled. A step's Task log lines go to the task run's logger as they come. Everything else is
``flows.runtime`` and the kernel's library API; lute.db stays the record.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from typing import Any, Dict, List, Optional, cast

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.exceptions import TerminationSignal
from prefect.futures import PrefectFuture
from prefect.states import Cancelled, Completed, Failed
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel

from flows import local_hooks
from flows.arp import ArpContext
from flows.backends.base import Backend
from flows.backends.local import LocalBackend
from flows.backends.slurm import SlurmBackend
from flows.rules import NodeState
from flows.runtime import FlowEvent, FlowOptions, FlowRuntime, PreparedFlow, prepare_flow
from flows.scheduler import Change, Scheduler
from lute_kernel.errors import InputError

FLOW_NAME = "lute_dag"
_RUNTIMES: Dict[str, FlowRuntime] = {}
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_CANCEL = -1  # queue marker: the flow run was cancelled through the API


class ArpParameters(BaseModel):
    """The ARP's variables a flow run carries; the token travels in a Prefect Secret block, by name."""

    jid_update_counters: Optional[str] = None
    arp_root_job_id: Optional[str] = None
    arp_location: Optional[str] = None
    authorization_block: Optional[str] = None


@task(name="lute-step", persist_result=False, cache_policy=NO_CACHE, log_prints=False)
def lute_step(flow_key: str, step_id: int, label: str, task_name: str) -> Any:
    """Run one step of the flow (``label``, Task ``task_name``); return its small JSON result, or a Failed state.

    A Failed state (not an exception: the step's log says why, a traceback would not) is retried
    when retries are left and the flow is not being cancelled.
    """
    runtime = _RUNTIMES[flow_key]
    logger = get_run_logger()
    result = runtime.run_step(step_id, lambda level, text: logger.log(_LEVELS.get(level, 20), text))
    if result.status is NodeState.COMPLETED:
        return result.to_json()
    return Failed(message=result.line, data=result.to_json())


@flow(
    name=FLOW_NAME,
    persist_result=False,
    log_prints=False,
    task_runner=cast(Any, ThreadPoolTaskRunner(max_workers=64)),  # steps are gated by max_parallel, not threads
)
def lute_dag(
    dag: str,
    config: str,
    experiment: Optional[str] = None,
    run: Optional[str] = None,
    run_type: Optional[str] = None,
    daq: Optional[str] = None,
    backend: Optional[str] = None,
    site: Optional[str] = None,
    runtime: Optional[str] = None,
    max_parallel: Optional[int] = None,
    retries: Optional[int] = None,
    retry_delay: Optional[float] = None,
    allow_unknown: bool = False,
    sbatch_args: Optional[List[str]] = None,
    arp: Optional[ArpParameters] = None,
) -> Any:
    """Run the LUTE DAG file ``dag`` with the config ``config`` for ``experiment``/``run``.

    Args:
        dag: The DAG file (upstream ``!LUTE_DAG`` format).
        config: The LUTE config file (header + Task sections).
        experiment: The run's experiment (``EXPERIMENT``/``{{ $EXPERIMENT }}`` in every step).
        run: The run number (``RUN``/``RUN_NUM``; an ARP ``12_<stamp>`` is run 12).
        run_type: For ``!run_type`` (DARK, GEOM, DATA, …); default: from the eLog if the site has it.
        daq: For ``!branch_daq2``: ``daq1`` or ``daq2``; default: from the eLog if the site has it.
        backend: ``local`` (this host) or ``slurm`` (a job per step); default: the site's.
        site: Site profile (default: ``$LUTE_SITE`` or ``local``).
        runtime: ``apptainer`` or ``local`` (default: the site's).
        max_parallel: Steps at once (default: the site's, else CPUs locally, 64 on Slurm).
        retries: Retries of a failed step (a node's ``retries:`` wins).
        retry_delay: Seconds between retries.
        allow_unknown: Skip steps whose Task this kernel does not ship instead of refusing the DAG.
        sbatch_args: More sbatch options for every slurm step (after its own and the site's).
        arp: The ARP's variables (eLog status counters).
    """
    logger = get_run_logger()
    hooks = local_hooks.take()
    options = FlowOptions(
        dag, config, experiment, run, run_type, daq, backend, site, runtime, max_parallel, retries, retry_delay,
        allow_unknown, tuple(sbatch_args or ()),
    )  # fmt: skip
    arp_context = _arp_context(arp, hooks)
    try:
        prepared = (
            hooks.prepared
            if hooks and hooks.prepared
            else prepare_flow(options, os.environ, authorization=arp_context.authorization)
        )
    except InputError as exc:
        logger.error("%s", exc)
        return Failed(message=f"bad input, nothing started: {exc}")
    if prepared.run_info.note and (run_type is None or daq is None):
        logger.info("run type/DAQ from the eLog: %s", prepared.run_info.note)
    run_folder = _run_folder()
    backend_impl = _backend(prepared, hooks)
    runtime_state = FlowRuntime(
        prepared,
        backend_impl,
        run_folder=run_folder,
        arp=arp_context,
        observer=(hooks.observer if hooks else None) or _ignore,
    )
    key = run_folder
    _RUNTIMES[key] = runtime_state
    try:
        outcome = _run_steps(key, prepared, runtime_state, logger, in_cli=hooks is not None)
    finally:
        _RUNTIMES.pop(key, None)
        backend_impl.close()
    for warning in sorted(set(runtime_state.warnings)):
        logger.warning("%s", warning)
    return outcome


def _ignore(event: FlowEvent) -> None:
    """Nobody watches a deployment's run live."""


def _arp_context(arp: Optional[ArpParameters], hooks: Optional[local_hooks.LocalHooks]) -> ArpContext:
    if hooks is not None and hooks.arp is not None:
        return hooks.arp
    if arp is None:
        return ArpContext()
    token = None
    if arp.authorization_block:
        from flows.secrets import read_secret

        token = read_secret(arp.authorization_block)
    return ArpContext(arp.jid_update_counters, arp.arp_root_job_id, arp.arp_location, token)


def _run_folder() -> str:
    from prefect.runtime import flow_run

    name, run_id = flow_run.get_name(), flow_run.get_id()
    return f"{name}-{str(run_id)[:8]}" if name and run_id else str(run_id or os.getpid())


def _backend(prepared: PreparedFlow, hooks: Optional[local_hooks.LocalHooks]) -> Backend:
    if prepared.backend == "slurm":
        return SlurmBackend()
    return LocalBackend(hooks.node_server if hooks else None)


def _run_steps(key: str, prepared: PreparedFlow, runtime: FlowRuntime, logger: Any, *, in_cli: bool) -> State[Any]:
    """Start steps as their rules allow, wait for them, and end the flow run's state.

    A termination signal cancels the steps and waits for them to end; then, in a process a worker
    started, it is raised again, so Prefect ends the run as the worker asked (Cancelled when it
    cancelled it). Under ``lute-kernel flow run`` (``in_cli``) the signal is the user's: the run
    ends Cancelled and the command exits 1.
    """
    scheduler = Scheduler(prepared.plan.graph, prepared.plan.unknown())
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
                futures[step.id] = _submit(key, prepared, runtime, step, done)
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
    if cancelled_by:
        return Cancelled(message=cancelled_by, data=summary)
    if failed:
        return Failed(message=f"{len(failed)} step(s) did not complete: {', '.join(failed)}", data=summary)
    return Completed(message=f"{len(rows)} step(s): every step that ran completed", data=summary)


def _submit(key: str, prepared: PreparedFlow, runtime: FlowRuntime, step: Any, done: queue.Queue[int]) -> Any:
    options = lute_step.with_options(
        task_run_name=step.label,
        retries=prepared.retries(step.retries),
        retry_delay_seconds=prepared.retry_delay,
        retry_condition_fn=lambda _task, _run, _state: runtime.can_retry(step.id),
        tags=[runtime.request(step.id).task, prepared.backend],
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


def _artifact(rows: List[Dict[str, Any]], prepared: PreparedFlow) -> None:
    try:
        create_table_artifact(table=rows, description=f"lute-kernel flow {prepared.plan.graph.dag.path.name}")
    except Exception:  # the table is a convenience; the flow's state and lute.db are the record
        pass
