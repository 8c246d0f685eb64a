"""Parsed YAML remembered by text, for the processes that prepare many runs of the same files.

Why: every step of a flow reads the same config and site profile, and parsing them is most of a
step's validation (~1-5 ms of YAML for a small config, tens of ms for a facility one). The node
server turns this on (``enable``), so each spare kernel's rehearsal parses both and its own step
finds them parsed; ``run A B C`` turns it on too. Keyed by the file's text (with the parse's
limits), so an edited file is parsed again and nothing can go stale; each caller gets its own copy
(``fresh``), so nothing it changes reaches the next. Off by default: a one-off ``run`` parses each
file once and pays no copy.
Only successful parses are kept (an error is raised again on every call), at most ``MAX_ENTRIES``.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any, Callable, Hashable, Optional, TypeVar

T = TypeVar("T")

MAX_ENTRIES = 8
"""Texts kept: a flow's config and site profile, with room for a few more."""

_memo: Optional[OrderedDict[Hashable, object]] = None


def enable() -> None:
    """Remember parses from now on in this process (and the processes it forks)."""
    global _memo
    if _memo is None:
        _memo = OrderedDict()


def disable() -> None:
    """Forget every parse and stop remembering (tests)."""
    global _memo
    _memo = None


def parsed(key: Hashable, parse: Callable[[], T]) -> T:
    """Return ``parse()`` — a copy of the remembered result for ``key`` when remembering is on."""
    if _memo is None:
        return parse()
    if key in _memo:
        _memo.move_to_end(key)
        return fresh(_memo[key])  # type: ignore[no-any-return]
    value = parse()
    _memo[key] = fresh(value)
    while len(_memo) > MAX_ENTRIES:
        _memo.popitem(last=False)
    return value


def fresh(value: Any) -> Any:
    """Return a copy of a parsed tree that shares nothing mutable with it.

    What YAML's safe loader makes: dicts, lists and sets are copied, dataclasses (a document and
    its lines) rebuilt; the rest (str, numbers, None, dates, bytes) cannot change and is shared.
    Several times faster than ``copy.deepcopy`` (it keeps no memo: an alias becomes two copies).
    """
    if isinstance(value, dict):
        return {key: fresh(item) for key, item in value.items()}
    if isinstance(value, list):
        return [fresh(item) for item in value]
    if isinstance(value, set):
        return set(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: fresh(getattr(value, f.name)) for f in dataclasses.fields(value)})
    return value
