"""Upstream LUTE configuration files: loading, shape checks and ``{{ ... }}`` substitution.

Owns turning a configuration file into plain, substituted data for one Task section (and the
header). Must not validate parameters, know which Tasks exist, or launch anything.
"""

from __future__ import annotations

from lute_kernel.config.loader import DEFAULT_TASK_TIMEOUT, LoadedConfig, load_config
from lute_kernel.config.substitution import HEADER, Resolver, resolve_document

__all__ = [
    "DEFAULT_TASK_TIMEOUT",
    "HEADER",
    "LoadedConfig",
    "Resolver",
    "load_config",
    "resolve_document",
]
