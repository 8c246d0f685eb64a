"""The ARP's token on its way from ``flow trigger`` to the flow run: a Prefect Secret block per run.

Owns storing the token in a Secret block with a one-off name (the flow run's parameters carry only
that name, so the token is not in the run's parameters, the UI's parameter view, argv or logs),
reading it in the flow, and deleting the block once read. Prefect's Secret blocks keep their value
obfuscated in API answers unless asked for it explicitly.
"""

from __future__ import annotations

import uuid
from typing import Any, Optional


def store_secret(value: str, prefix: str = "lute-arp") -> str:
    """Save ``value`` in a new Secret block; return the block's name."""
    from prefect.blocks.system import Secret

    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    Secret(value=value).save(name, overwrite=False)
    return name


def read_secret(name: str, *, delete: bool = True) -> Optional[str]:
    """Return the secret stored under ``name`` (None when it is gone) and, by default, delete the block."""
    from prefect.blocks.system import Secret

    try:
        block: Any = Secret.load(name)
    except ValueError:
        return None
    value = block.get()
    if delete:
        try:
            Secret.delete(name)
        except Exception:  # the flow still has the value; a left-over block is tidied by hand
            pass
    return str(value)
