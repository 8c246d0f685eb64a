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
from typing import Any, Dict, List, Optional, cast

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel

from flows import local_hooks
from flows.arp import ArpContext
from flows.backends.base import Backend
from flows.backends.local import LocalBackend
from flows.backends.slurm import SlurmBackend
from flows.rules import NodeState
from flows.runtime import FlowEvent, FlowOptions, FlowRuntime, PreparedFlow, prepare_flow
from flows.step_loop import run_steps
from lute_kernel.errors import InputError

FLOW_NAME = "lute_dag"
_RUNTIMES: Dict[str, FlowRuntime] = {}
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


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
        outcome = run_steps(key, prepared, runtime_state, logger, step_task=lute_step, in_cli=hooks is not None)
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
