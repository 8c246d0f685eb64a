"""Build a binary's argv from its validated parameters (upstream LUTE's flag rules, minus shell strings).

Owns the translation ``ThirdPartyParameters -> list[str]``. Pure: no I/O, no spawning.

Rules, per field in declaration order (``executable`` first, ``lute_config`` and empty values skipped):
- ``flag_type="--"`` / ``"-"``: ``--name value`` (``--name=value`` with ``long_flags_use_eq``,
  ``-n=value`` with ``short_flags_use_eq``); booleans are switches (True adds the flag, False omits it).
- ``flag_type=""``: positional value.
- no ``flag_type``: one-letter names are short flags, ``p_argN`` names are positional,
  other names are long flags.
- ``rename_param`` replaces the field name in the flag.
- Lists give one argument per element; every other value is one argument (never split on spaces).
"""

from __future__ import annotations

from typing import Any, List

from lute_kernel.parameters import ThirdPartyParameters, field_extra

_SKIPPED = frozenset({"executable", "lute_config"})


def _values(value: Any) -> List[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _default_flag(name: str) -> str:
    if name.startswith("p_arg"):
        return ""
    return "-" if len(name) == 1 else "--"


def build_binary_argv(params: ThirdPartyParameters) -> List[str]:
    """Return ``[executable, *args]`` for a third-party Task's parameters."""
    model = type(params)
    argv: List[str] = [str(params.executable)]
    short_eq = bool(getattr(model, "short_flags_use_eq", False))
    long_eq = bool(getattr(model, "long_flags_use_eq", False))
    for name in model.model_fields:
        value = getattr(params, name)
        if name in _SKIPPED or value is None or value == "" or (isinstance(value, (list, tuple)) and not value):
            continue  # an empty list would leave a bare flag that swallows the next argument
        extra = field_extra(model, name)
        flag = str(extra.get("flag_type", _default_flag(name)))
        if flag == "":
            argv.extend(_values(value))
            continue
        option = f"{flag}{extra.get('rename_param', name)}"
        if isinstance(value, bool):
            if value:
                argv.append(option)
            continue
        use_eq = short_eq if flag == "-" else long_eq
        if use_eq:
            argv.append(f"{option}={','.join(_values(value))}")
        else:
            argv.append(option)
            argv.extend(_values(value))
    return argv
