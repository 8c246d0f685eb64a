"""Resolve ``{{ ... }}`` substitutions in a configuration's header and Task sections.

Owns the substitution language of upstream LUTE configuration files, on plain data:

- ``{{ $VAR }}``: an environment variable (from the ``env`` mapping given; always a string).
- ``{{ name }}``: a key of the same section, else of the header (``lute_config``), else a
  section name (a value naming itself skips to the next, so ``run: "{{ run }}"`` in a section
  takes the header's ``run``); ``{{ lute_config.name }}`` is the header explicitly,
  ``{{ Task.a.b }}`` goes into another section. Each dot goes one mapping (or list index)
  deeper; keys that themselves contain dots (``rayonix.bin_size``) are matched too.
- ``{{ name:04d }}``: a Python format spec; the result is a string. A string value meeting a
  numeric spec (``d x o b`` or ``e f g % n``) is converted to int or float first.
- A value that is one whole substitution without a spec keeps the type of what it refers to;
  anything else becomes a string.

Referenced values are resolved first, so chains work; cycles, undefined names, unset
environment variables and bad specs raise :class:`~lute_kernel.errors.ConfigError` naming the
dotted key that holds the substitution. Resolution is iterative (an explicit stack, not Python
recursion), so a chain of any length resolves or fails with a message; what substitution may
produce is bounded (:class:`~lute_kernel.config.limits.ConfigLimits`: characters, copied values,
nesting). Addresses are tuples: ``("lute_config", "run")`` for the header, ``("Task", "key", 0)``
for sections. Must not read files, the process environment, or know which Tasks exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Dict, Optional

from lute_kernel.config.limits import DEFAULT_LIMITS, ConfigLimits
from lute_kernel.config.resolver import HEADER, Address, Locate, Resolver, dotted


def resolve_document(
    header: Mapping[str, Any],
    sections: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    locate: Optional[Locate] = None,
    path: Optional[str] = None,
    limits: ConfigLimits = DEFAULT_LIMITS,
) -> Dict[str, Any]:
    """Resolve a whole configuration at once.

    Args:
        header: The header document, unsubstituted.
        sections: Section name to section mapping, unsubstituted.
        env: Environment variables for ``{{ $VAR }}``.
        locate: Dotted key to 1-based line, for error messages.
        path: The configuration file, for error messages.
        limits: Bounds on what substitution may produce.

    Returns:
        ``{"header": {...}, "sections": {name: {...}}}`` with every substitution resolved.

    Raises:
        ConfigError: The first substitution error, in file order.
    """
    resolver = Resolver(header, sections, env, locate=locate, path=path, limits=limits)
    errors = resolver.errors()
    if errors:
        raise errors[0]
    return {
        "header": resolver.header(),
        "sections": {name: resolver.section(name) for name in sections},
    }


__all__ = ["HEADER", "Address", "Locate", "Resolver", "dotted", "resolve_document"]
