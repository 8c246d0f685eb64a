"""Whether JSON gives a value back equal: the check before anything is kept or sent as JSON in place of itself.

Owns `round_trips`: str-keyed dicts, lists and tuples (read back as lists), str, bool, int and
float (NaN and the infinities included: Python's json writes and reads them) come back equal;
anything else — a set, bytes, a date, a non-str key — does not, and the caller then keeps or
sends nothing, and does the work itself. Stdlib only, imports nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: the run path imports this before anything else
if TYPE_CHECKING:
    from typing import Any

__all__ = ["round_trips"]


def round_trips(value: Any) -> bool:
    """Return True when ``json.loads(json.dumps(value))`` equals ``value`` (tuples as lists)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, dict):
        return all(isinstance(key, str) and round_trips(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return all(round_trips(item) for item in value)
    return False
