"""Posting run parameters to the LCLS eLog. The one seam to that HTTP service.

Owns the request; the URL comes from the site profile. Failures are reported to the caller, who
logs them: an unreachable eLog must not fail an analysis that succeeded.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import requests

TIMEOUT_S = 10.0


def post_run_parameters(base_url: str, experiment: str, run: Any, parameters: Mapping[str, Any]) -> Optional[str]:
    """POST ``parameters`` as run parameters of ``experiment``/``run``; return an error text or None."""
    url = f"{base_url.rstrip('/')}/{experiment}/ws/add_run_params"
    try:
        response = requests.post(
            url,
            params={"run_num": str(run)},
            json={str(k): str(v) for k, v in parameters.items()},
            timeout=TIMEOUT_S,
        )
    except requests.RequestException as exc:
        return f"eLog post to {url} failed: {exc}"
    if response.status_code >= 400:
        return f"eLog post to {url} failed: HTTP {response.status_code}"
    return None
