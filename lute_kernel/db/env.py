"""Which of a Task's environment variables ``exec_cfg.env`` keeps.

Owns the rule: what upstream LUTE stores (``LUTE_*`` and ``SLURM_*``, without upstream's
``LUTE_TENV_*`` switches) plus the names the Task was explicitly allowed (the site's
``env_allowlist``, the Task's own ``env``), and never a secret: a name containing TOKEN, SECRET,
PASSWORD, KEY or AUTHORIZATION (any case) is dropped whatever matched it, so the run's IPC token
(``LUTE_IPC_TOKEN``) never reaches the database. Pure: must not read ``os.environ``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Dict

RECORDED_ENV_PATTERNS = ("LUTE_*", "SLURM_*")
"""What upstream records of the Task's environment."""

SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY", "AUTHORIZATION")
"""A variable whose name contains one of these (any case) is never recorded."""

__all__ = ["RECORDED_ENV_PATTERNS", "SECRET_WORDS", "is_secret_name", "recorded_env"]


def is_secret_name(name: str) -> bool:
    """Return whether a variable's name says it holds a secret (``GITHUB_TOKEN``, ``aws_secret_key``)."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def recorded_env(task_env: Mapping[str, str], allowlist: Sequence[str] = ()) -> Dict[str, str]:
    """Return the part of the Task's environment that ``exec_cfg.env`` stores, sorted by name.

    Args:
        task_env: The environment the Task received (not the container runtime's own).
        allowlist: Further names the Task was given on purpose: exact names or ``fnmatch``
            patterns (``MY_TOOL_*``), e.g. the site's ``env_allowlist`` and the Task's ``env``.

    Returns:
        A new dict: ``LUTE_*``, ``SLURM_*`` and allowlisted variables, secrets removed.
    """
    patterns = (*RECORDED_ENV_PATTERNS, *allowlist)
    kept = {
        name: value
        for name, value in task_env.items()
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
        and not name.startswith("LUTE_TENV_")
        and not is_secret_name(name)
    }
    return dict(sorted(kept.items()))
