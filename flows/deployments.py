"""Deployments of ``lute_dag``: registering one with a Prefect server, and triggering and following its runs.

Owns the three things the eLog workflow needs from Prefect: ``deploy`` (create or update the
deployment ``lute_dag/<name>`` for a process work pool, its code taken from this checkout or
installation, its default parameters — DAG, config, backend, site, runtime — given at deploy
time), ``trigger`` (one flow run with the run's experiment, run, run type and the ARP's
variables; the token goes in a Secret block) and ``follow`` (the run's logs and step states as
they come, its cancellation when the follower is interrupted, and its final state). Also the
check that a Prefect server answers before anything starts. Must not run steps itself.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional
from uuid import UUID

_LOG_PAGE = 200
ENTRYPOINT = "flows/lute_dag.py:lute_dag"
"""The flow, relative to the folder that holds the ``flows`` package."""


def api_problem(url: str, *, timeout_s: float = 5.0) -> Optional[str]:
    """Return why the Prefect API at ``url`` does not answer (None when it does).

    Through ``urllib.request``, which Prefect has imported already and which honours the same proxy
    variables as Prefect's client (``requests`` cost every flow ~60 ms of imports here).
    """
    import urllib.error
    import urllib.request

    health = f"{url.rstrip('/')}/health"
    if not health.startswith(("http://", "https://")):
        return f"not an http(s) URL: {url[:200]!r}"
    try:
        with urllib.request.urlopen(health, timeout=timeout_s) as response:  # http(s) only: checked above
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections, malformed URLs
        reason = getattr(exc, "reason", None) or exc
        return f"{type(exc).__name__}: {str(reason)[:200]}"
    if status != 200:
        return f"HTTP {status} from {url}/health"
    return None


def code_root() -> Path:
    """The folder holding the ``flows`` package: a checkout's root, or the installation's site-packages."""
    import importlib.util

    spec = importlib.util.find_spec("flows")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the flows package cannot be found")
    return Path(next(iter(spec.submodule_search_locations))).resolve().parent


def ensure_process_pool(name: str) -> bool:
    """Create the process work pool ``name`` when it does not exist; return True when it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            try:
                client.create_work_pool(WorkPoolCreate(name=name, type="process"))
                return True
            except ObjectAlreadyExists:  # made meanwhile (a worker starting on it, another deploy): use it
                pool = client.read_work_pool(name)
    if pool.type != "process":
        raise ValueError(f"work pool {name!r} is a {pool.type!r} pool; flows need a process pool")
    return False


def deploy(name: str, pool: str, parameters: Dict[str, Any], *, description: str = "") -> UUID:
    """Create or update the deployment ``lute_dag/<name>`` on ``pool``; return its id."""
    from flows.lute_dag import lute_dag

    root = code_root()
    deployable: Any = lute_dag.from_source(source=str(root), entrypoint=ENTRYPOINT)
    deployment_id = deployable.deploy(
        name=name,
        work_pool_name=pool,
        parameters=parameters,
        description=description or None,
        build=False,
        push=False,
        print_next_steps=False,
        ignore_warnings=True,
    )
    return UUID(str(deployment_id))


@dataclass
class FollowedRun:
    """How a followed flow run ended."""

    flow_run_id: UUID
    state_type: str
    state_name: str
    message: str
    table: List[Dict[str, Any]]

    @property
    def ok(self) -> bool:
        """True when the flow run completed (every step that ran completed)."""
        return self.state_type == "COMPLETED"


def trigger(deployment: str, parameters: Dict[str, Any]) -> UUID:
    """Create a flow run of ``deployment`` (``lute_dag/<name>``); return its id at once."""
    from prefect.deployments import run_deployment

    flow_run: Any = run_deployment(name=deployment, parameters=parameters, timeout=0, as_subflow=False)
    return UUID(str(flow_run.id))


def follow(
    flow_run_id: UUID,
    *,
    poll_seconds: float,
    on_log: Callable[[str, str, str], None],
    on_state: Callable[[str, str], None],
) -> FollowedRun:
    """Follow a flow run to its end: print its logs (step, level, text) and step states; cancel it on SIGINT/SIGTERM.

    Polls the server every ``poll_seconds`` (Prefect's own followers poll too).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.states import Cancelling

    interrupted: List[int] = []
    previous = {
        s: signal.signal(s, lambda signum, _f: interrupted.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)
    }
    seen_logs: Dict[UUID, Any] = {}
    task_states: Dict[UUID, str] = {}
    names: Dict[UUID, str] = {}
    try:
        with get_client(sync_client=True) as client:
            while True:
                if interrupted and interrupted[0] > 0:
                    on_state("flow", f"{signal.Signals(interrupted[0]).name}: cancelling the flow run")
                    client.set_flow_run_state(flow_run_id, Cancelling(), force=True)
                    interrupted[0] = 0
                run = client.read_flow_run(flow_run_id)
                task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
                for task_run in sorted(task_runs, key=lambda t: str(t.start_time or t.expected_start_time or "")):
                    names[task_run.id] = task_run.name or str(task_run.id)
                    state = (task_run.state.name if task_run.state else None) or "?"
                    if task_states.get(task_run.id) != state:
                        task_states[task_run.id] = state
                        on_state(names[task_run.id], state)
                _print_new_logs(client, flow_run_id, seen_logs, names, on_log)
                if run.state is not None and run.state.is_final():
                    # The flow's last lines reach the server in its last log batch, which may be sent
                    # after its final state: read until none came for longer than a batch interval.
                    quiet_s = max(poll_seconds, _log_batch_seconds() + 1.0)
                    last_new = time.monotonic()
                    while time.monotonic() - last_new < quiet_s:
                        time.sleep(poll_seconds)
                        if _print_new_logs(client, flow_run_id, seen_logs, names, on_log):
                            last_new = time.monotonic()
                    table = _table_artifact(client, flow_run_id)
                    return FollowedRun(
                        flow_run_id, run.state.type.value, run.state.name or "", run.state.message or "", table
                    )
                time.sleep(poll_seconds)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _log_batch_seconds() -> float:
    """How often a flow process sends its log lines to the server (Prefect's setting)."""
    from prefect.settings import PREFECT_LOGGING_TO_API_BATCH_INTERVAL

    try:
        return float(PREFECT_LOGGING_TO_API_BATCH_INTERVAL.value())
    except (TypeError, ValueError):
        return 2.0


def _print_new_logs(
    client: Any,
    flow_run_id: UUID,
    seen: Dict[UUID, Any],
    names: Dict[UUID, str],
    on_log: Callable[[str, str, str], None],
) -> int:
    """Hand on the flow run's log lines not seen yet, oldest first, a page at a time; return how many."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterTimestamp
    from prefect.client.schemas.sorting import LogSort

    count = 0
    while True:
        after = max(seen.values()) if seen else None
        logs = client.read_logs(
            log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]), timestamp=LogFilterTimestamp(after_=after)
            ),
            sort=LogSort.TIMESTAMP_ASC,
            limit=_LOG_PAGE,
        )
        fresh = [log for log in logs if log.id not in seen]
        for log in fresh:
            seen[log.id] = log.timestamp
            step = names.get(log.task_run_id, "step") if log.task_run_id else "flow"
            on_log(step, _level(log.level), log.message)
        count += len(fresh)
        if len(logs) < _LOG_PAGE or not fresh:
            return count


def _level(number: int) -> str:
    return {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}.get(number, str(number))


def _table_artifact(client: Any, flow_run_id: UUID) -> List[Dict[str, Any]]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType

    try:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), type=ArtifactFilterType(any_=["table"])
            )
        )
    except Exception:
        return []
    for artifact in artifacts:
        data = artifact.data
        if isinstance(data, str):
            import json

            try:
                data = json.loads(data)
            except ValueError:
                continue
        if isinstance(data, list):
            return [row for row in data if isinstance(row, dict)]
    return []
