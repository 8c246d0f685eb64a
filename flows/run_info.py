"""A run's type and DAQ from the eLog, for ``!run_type`` and ``!branch_daq2``: the one seam to the run documents.

Owns ``GET <flows.elog_runs_url>/<experiment>/ws/runs/<run>`` (with the ARP's token, when there
is one) and reading the answer as upstream LUTE does: ``value.type`` is the run type, and an
LCLS-II (daq2) run is one whose run parameters name a ``/drp/`` detector. Anything else — no URL
configured, no experiment or run, an unreachable eLog, an unexpected answer — is "unknown",
with a note saying why; the flow then needs ``--run-type``/``--daq`` if its DAG branches on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RunInfo:
    """What the eLog says about a run (None: not known), and why not when it says nothing."""

    run_type: Optional[str] = None
    daq: Optional[str] = None
    note: str = ""


def fetch_run_info(
    base_url: Optional[str], experiment: Optional[str], run: Optional[str], authorization: Optional[str] = None
) -> RunInfo:
    """Ask the eLog for the run document of ``experiment``/``run``."""
    if not base_url:
        return RunInfo(note="no eLog configured (flows.elog_runs_url)")
    if not experiment or not run:
        return RunInfo(note="the flow run has no experiment and run to look up")
    import requests

    url = f"{base_url.rstrip('/')}/{experiment}/ws/runs/{run}"
    headers = {"Authorization": authorization} if authorization else {}
    try:
        response = requests.get(url, headers=headers, timeout=TIMEOUT_S)
        data = response.json() if response.status_code == 200 else None
    except (requests.RequestException, ValueError) as exc:
        return RunInfo(note=f"the eLog at {url} did not answer: {type(exc).__name__}")
    value = data.get("value") if isinstance(data, dict) else None
    if not isinstance(value, dict):
        status = response.status_code
        return RunInfo(note=f"the eLog at {url} gave no run document (HTTP {status})")
    run_type = value.get("type")
    params = value.get("params")
    daq = None
    if isinstance(params, dict):
        daq = "daq2" if any("/drp/" in str(key) for key in params) else "daq1"
    return RunInfo(run_type=str(run_type) if run_type else None, daq=daq)
