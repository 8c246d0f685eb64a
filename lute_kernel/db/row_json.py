"""A run's row as JSON between the kernel and its writer process, and the writer's errors back as exceptions.

Owns `encode_fields` (a `RunRecord`'s fields by name to JSON-able values: datetimes as ISO text,
mappings as objects, sequences as arrays; None when JSON would not give them back equal, so the
row is written in the kernel instead), `decode_fields` (back to the `RunRecord`) and `raise_error`
(the writer's exception, sent as its type's name and message, raised again as the same class for
ValueError, OSError and the kernel's own errors; anything else as a DatabaseError). Imports only
the standard library until it is used: the kernel imports it before anything else of a `run`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: imported first thing of a `run`
if TYPE_CHECKING:
    from typing import Any, Dict, Mapping, Optional

    from lute_kernel.db.records import RunRecord

__all__ = ["decode_fields", "encode_fields", "raise_error"]

_MOMENTS = ("start", "end")
_MAPPINGS = ("header", "parameters", "env")
_SEQUENCES = ("argv", "env_allowlist")
"""The record's fields typed ``datetime``, ``Mapping`` and ``Sequence``: sent as ISO text, a JSON object and a JSON
array, read back as datetime, dict and list."""


def encode_fields(fields: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """Return a record's fields as JSON-able values, or None when JSON would not carry them back unchanged."""
    from datetime import datetime

    from lute_kernel.json_exact import round_trips

    out: Dict[str, Any] = {}
    for name, value in fields.items():
        try:
            if name in _MOMENTS:
                value = value if value is None else datetime.isoformat(value)
            elif name in _MAPPINGS:
                value = dict(value)
            elif name in _SEQUENCES:
                value = list(value)
        except (TypeError, ValueError):  # not the type the field is: the writer here says what is wrong
            return None
        if not round_trips(value):
            return None
        out[name] = value
    return out


def decode_fields(fields: Dict[str, Any]) -> RunRecord:
    """Return the `RunRecord` that `encode_fields` gave ``fields`` for (TypeError: not a record's fields)."""
    from datetime import datetime

    from lute_kernel.db.records import RunRecord

    values = dict(fields)
    for name in _MOMENTS:
        if values.get(name) is not None:
            values[name] = datetime.fromisoformat(values[name])
    return RunRecord(**values)


def raise_error(error: Any) -> None:
    """Raise what the writer raised: the same class for ValueError, OSError and the kernel's own errors."""
    from lute_kernel import errors

    name, message = str(error[0]), str(error[1])
    found = {"ValueError": ValueError, "OSError": OSError}.get(name) or getattr(errors, name, None)
    plain = isinstance(found, type) and issubclass(found, Exception) and found is not errors.ConfigError
    raise (found if plain else errors.DatabaseError)(message)  # type: ignore[misc]
