"""Tasklets: small host-side functions run before or after a Task (make a folder, concatenate files).

Owns the ``Tasklet`` declaration, ``{{ param }}`` substitution of its arguments from the validated
parameters, and running a list of them. Runs in the kernel's process, never in the Task's; there is
no start handshake with the Task (upstream used SIGSTOP/SIGCONT for that).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Tuple

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.\[\]]*)\s*\}\}")


@dataclass(frozen=True)
class Tasklet:
    """A host function (``"package.module:function"``) and its arguments.

    String arguments may hold ``{{ param }}`` placeholders (dotted for nested parameters, e.g.
    ``{{ lute_config.work_dir }}``); they are filled from the validated parameters.
    """

    function: str
    args: Tuple[Any, ...] = ()
    kwargs: Dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """Return ``function(args…)`` for logs."""
        return f"{self.function}({', '.join(repr(a) for a in self.args)})"


def lookup(values: Mapping[str, Any], dotted: str) -> Any:
    """Return ``values[a][b]…`` for ``"a.b"``; raise KeyError naming the missing part."""
    current: Any = values
    for part in dotted.split("."):
        if not isinstance(current, Mapping) or part not in current:
            raise KeyError(f"tasklet placeholder {{{{ {dotted} }}}} names no parameter")
        current = current[part]
    return current


def fill(value: Any, values: Mapping[str, Any]) -> Any:
    """Substitute ``{{ name }}`` in ``value``; a whole placeholder keeps the parameter's type."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole:
            return lookup(values, whole.group(1))
        return _PLACEHOLDER.sub(lambda m: str(lookup(values, m.group(1))), value)
    if isinstance(value, (list, tuple)):
        return type(value)(fill(v, values) for v in value)
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    return value


def resolve_function(spec: str) -> Callable[..., Any]:
    """Import ``"module:function"``."""
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"tasklet {spec!r} must be 'module:function'")
    func = getattr(importlib.import_module(module_name), attr)
    if not callable(func):
        raise TypeError(f"tasklet {spec!r} is not callable")
    return func  # type: ignore[no-any-return]


def run_tasklets(tasklets: List[Tasklet], values: Mapping[str, Any]) -> List[Any]:
    """Run each tasklet with its arguments filled from ``values``; return their results in order."""
    results: List[Any] = []
    for tasklet in tasklets:
        func = resolve_function(tasklet.function)
        args = fill(tasklet.args, values)
        kwargs = fill(tasklet.kwargs, values)
        results.append(func(*args, **kwargs))
    return results
