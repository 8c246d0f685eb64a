"""What substitution may produce in one configuration file: characters, copied values, nesting.

Owns the measure of resolved values and the running totals a resolver charges as it works, so a
file whose substitutions would build gigabytes (``"{{ a }}{{ a }}"`` doubling through a chain,
a large mapping copied into every section, chains that nest a list in a list 3,000 times) fails
with a message as soon as a total passes its limit, after work proportional to the limit.
Must not look names up or format anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, List, Tuple

from lute_kernel.config.limits import ConfigLimits

Measure = Tuple[int, int, int]
"""(values, characters in strings, nesting depth) of a resolved value; a scalar's depth is 1."""

SCALAR: Measure = (1, 0, 1)


class OverBudget(Exception):
    """A substitution would pass a limit; the message says which."""


def measure(value: Any) -> Measure:
    """Return the :data:`Measure` of plain data, without recursion."""
    values = chars = depth = 0
    stack: List[Tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        values += 1
        depth = max(depth, level)
        if isinstance(item, str):
            chars += len(item)
        elif isinstance(item, Mapping):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return values, chars, depth


def combined(parts: List[Measure]) -> Measure:
    """Return the measure of a mapping or list whose items measure ``parts``."""
    return (
        1 + sum(part[0] for part in parts),
        sum(part[1] for part in parts),
        1 + max((part[2] for part in parts), default=0),
    )


class SubstitutionBudget:
    """The running totals of one configuration file's substitutions.

    Args:
        limits: The limits the totals must stay within.
    """

    def __init__(self, limits: ConfigLimits) -> None:
        self._limits = limits
        self._chars = 0
        self._copied = 0

    def check_text(self, count: int) -> None:
        """Raise OverBudget if ``count`` more characters would pass the limit (nothing is charged)."""
        if self._chars + count > self._limits.max_substituted_chars:
            raise OverBudget(
                f"substitutions produce more than {self._limits.max_substituted_chars:,} characters in this file"
            )

    def charge_text(self, count: int) -> None:
        """Charge ``count`` characters built by substitution."""
        self.check_text(count)
        self._chars += count

    def charge_copy(self, size: Measure, depth_above: int) -> None:
        """Charge a value copied by a whole-value substitution, placed ``depth_above`` levels deep."""
        values, chars, depth = size
        if depth_above + depth > self._limits.max_depth:
            raise OverBudget(f"after substitution, values are nested more than {self._limits.max_depth} levels deep")
        copied = values if values > 1 else 0  # a scalar is a value either way, not a copy
        if self._copied + copied > self._limits.max_copied_values:
            raise OverBudget(f"substitutions copy more than {self._limits.max_copied_values:,} values in this file")
        self.charge_text(chars)
        self._copied += copied


__all__ = ["SCALAR", "Measure", "OverBudget", "SubstitutionBudget", "combined", "measure"]
