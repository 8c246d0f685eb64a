"""The eLog's Automated Run Processor (ARP): its variables, and the run-status counters it shows.

Owns :class:`ArpContext` — what the ARP gives the job it starts at the end of a run
(``JID_UPDATE_COUNTERS``: the URL of that run's status counters in the eLog, ``ARP_ROOT_JOB_ID``,
``ARP_LOCATION``, and the ``Authorization`` token) — and the one seam that posts to the counters
URL, as upstream LUTE does: ``[{"key": "<Task> status", "value": "RUNNING"}, …]`` when a step
starts and ends, plus a dict summary's items. The token is a secret: it is never printed (its
``repr`` hides it), never put in argv, a Task's environment, a log or lute.db. A failed post is a
warning, never a failure of the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

TIMEOUT_S = 10.0
SECRET_VARIABLES = ("Authorization",)
"""Host variables that are secrets: kept out of every step's environment."""


@dataclass(frozen=True)
class ArpContext:
    """The ARP variables of one flow run (all None outside the ARP)."""

    jid_update_counters: Optional[str] = None
    arp_root_job_id: Optional[str] = None
    arp_location: Optional[str] = None
    authorization: Optional[str] = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ArpContext:
        """Read the variables the ARP sets (``ARP_JOB_ID`` is the root job's id when the ARP started us)."""
        return cls(
            jid_update_counters=env.get("JID_UPDATE_COUNTERS") or None,
            arp_root_job_id=env.get("ARP_ROOT_JOB_ID") or env.get("ARP_JOB_ID") or None,
            arp_location=env.get("ARP_LOCATION") or None,
            authorization=env.get("Authorization") or None,
        )

    def public(self) -> Dict[str, Optional[str]]:
        """Return the variables that are not secret (what a flow run's parameters may show)."""
        return {
            "jid_update_counters": self.jid_update_counters,
            "arp_root_job_id": self.arp_root_job_id,
            "arp_location": self.arp_location,
        }


def status_items(task: str, status: str, summary: Any = None) -> Dict[str, str]:
    """Return what upstream posts for a Task: ``{"<Task> status": status}`` and a dict summary's items.

    A summary recorded as text in upstream's ``"key: value;key: value"`` form is read back as items.
    """
    items = {f"{task} status": status}
    if isinstance(summary, Mapping):
        items.update({str(k): str(v) for k, v in summary.items()})
    elif isinstance(summary, str) and summary and all(": " in part for part in summary.split(";")):
        items.update(dict(part.split(": ", 1) for part in summary.split(";")))
    return items


def post_counters(arp: ArpContext, items: Mapping[str, str]) -> Optional[str]:
    """POST ``items`` to the run's status counters; return an error text (no secrets in it) or None."""
    if not arp.jid_update_counters or not items:
        return None
    import requests  # only when the ARP started us

    body: List[Dict[str, str]] = [{"key": key, "value": value} for key, value in items.items()]
    headers = {"Authorization": arp.authorization} if arp.authorization else {}
    try:
        response = requests.post(arp.jid_update_counters, json=body, headers=headers, timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        return f"posting the run's status to the eLog failed: {type(exc).__name__}"
    if response.status_code >= 400:
        return f"posting the run's status to the eLog failed: HTTP {response.status_code}"
    return None
