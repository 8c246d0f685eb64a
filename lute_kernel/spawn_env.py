"""The environment a worker's process is spawned with: the plan's, plus the run's id and its IPC settings.

Owns the variables the kernel adds to a plan's environment at spawn time — never in argv, and never
in the plan (the token is secret; the plan is printed by ``explain``): the run id the descendant
sweep looks for, and for a worker the socket's address as seen from inside, the run token, the CURVE
key (TCP only) and the message size limit. Each is set both bare and with the runtime's prefix
(``APPTAINERENV_``), so it reaches the Task inside a container too. One function, used by the launch
and by an early start (``lute_kernel.early_launch``), so both spawn the same environment.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional

from lute_kernel.descendants import RUN_ID_VARIABLE


def spawn_env(
    plan_env: Mapping[str, str],
    prefix: str,
    run_id: str,
    worker: Optional[Mapping[str, str]] = None,
) -> Dict[str, str]:
    """Return the spawn environment: ``plan_env``, the run id, and for a worker its IPC variables.

    ``worker`` maps ``endpoint``, ``token``, ``server_key`` and ``max_bytes`` to their values (None: a binary).
    """
    env = dict(plan_env)
    env[RUN_ID_VARIABLE] = env[f"{prefix}{RUN_ID_VARIABLE}"] = run_id
    if worker is not None:
        env[f"{prefix}LUTE_IPC_ENDPOINT"] = worker["endpoint"]
        env[f"{prefix}LUTE_IPC_TOKEN"] = worker["token"]
        env[f"{prefix}LUTE_IPC_SERVER_KEY"] = worker["server_key"]  # CURVE public key on TCP; "" without
        # The worker then fails at send time, with advice, rather than the kernel at receive time.
        env[f"{prefix}LUTE_IPC_MAX_BYTES"] = worker["max_bytes"]
    return env
