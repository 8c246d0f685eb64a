"""The ``{{ name:spec }}`` references of the substitution language, parsed and formatted.

Owns what one reference says (a dotted name or ``$VAR``, an optional Python format spec) and
turning a value into text with that spec, within bounds: a width or precision above the limit
(``{{ run:1000000000d }}``) is refused before anything is formatted. Must not look names up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from lute_kernel.config.limits import ConfigLimits

PATTERN = re.compile(r"\{\{([^{}]*)\}\}")
"""One reference: ``{{`` anything without braces ``}}``."""

_INT_TYPES = frozenset("bdoxX")
_FLOAT_TYPES = frozenset("eEfFgGn%")
# In a spec the fill is one character and is followed by an align character, so a run of
# digits is a width or a precision (or the 0 flag joined to a width).
_NUMBERS = re.compile(r"[0-9]+")


class SpecError(ValueError):
    """A format spec cannot be applied to a value; the message says why."""


@dataclass(frozen=True)
class Reference:
    """One parsed ``{{ ... }}``: what it names and how to format it.

    Attributes:
        text: The reference as written, braces included.
        name: The dotted name, or ``$VAR``.
        spec: The format spec after ``:``, or None.
    """

    text: str
    name: str
    spec: Optional[str]

    @property
    def env_var(self) -> Optional[str]:
        """The environment variable's name for ``{{ $VAR }}``, else None."""
        return self.name[1:] if self.name.startswith("$") else None

    @property
    def names_something(self) -> bool:
        """False for ``{{ }}``, ``{{ $ }}`` and names with an empty part (``A..b``)."""
        return self.name not in ("", "$") and all(part != "" for part in self.name.split("."))

    @property
    def shown(self) -> str:
        """The reference for messages, shortened when very long."""
        return shorten(self.text, 80)


def parse_reference(match: re.Match[str]) -> Reference:
    """Return the reference a :data:`PATTERN` match holds."""
    name, colon, spec = match.group(1).partition(":")
    return Reference(match.group(0), name.strip(), spec.strip() if colon else None)


def format_value(value: Any, spec: str, limits: ConfigLimits) -> str:
    """Format ``value`` with a Python format spec; numeric specs convert strings first.

    Raises:
        SpecError: The spec is too long, asks for a width or precision above the limit, or
            does not apply to the value.
    """
    if len(spec) > limits.max_spec_length:
        raise SpecError(f"the format spec is longer than {limits.max_spec_length} characters")
    widest = max((int(digits) for digits in _NUMBERS.findall(spec) if len(digits) < 12), default=0)
    if widest > limits.max_format_width or any(len(digits) >= 12 for digits in _NUMBERS.findall(spec)):
        raise SpecError(f"width and precision are limited to {limits.max_format_width}")
    kind = spec[-1:]
    try:
        if isinstance(value, str) and kind in _INT_TYPES:
            value = int(value.strip())
        elif isinstance(value, str) and kind in _FLOAT_TYPES:
            value = float(value.strip())
        return format(value, spec)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SpecError(str(exc)) from None


def shorten(text: str, limit: int) -> str:
    """Return ``text``, or its first ``limit`` characters and ``...`` when longer."""
    return text if len(text) <= limit else text[: max(limit - 3, 1)] + "..."


__all__ = ["PATTERN", "Reference", "SpecError", "format_value", "parse_reference", "shorten"]
