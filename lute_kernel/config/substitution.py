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
dotted key that holds the substitution. Addresses are tuples: ``("lute_config", "run")`` for the
header, ``("Task", "key", 0)`` for sections. Must not read files, the process environment, or
know which Tasks exist.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from lute_kernel.errors import ConfigError

HEADER = "lute_config"
"""The name the header goes by in substitutions and dotted keys."""

Address = Tuple[Union[str, int], ...]
Locate = Callable[[str], Optional[int]]

_PATTERN = re.compile(r"\{\{([^{}]*)\}\}")
_INT_TYPES = frozenset("bdoxX")
_FLOAT_TYPES = frozenset("eEfFgGn%")


class _Missing(Exception):
    """A name is not found under one candidate root; the next candidate may have it."""


@dataclass(frozen=True)
class _Reference:
    """One parsed ``{{ ... }}``: what it names and how to format it."""

    text: str
    name: str
    spec: Optional[str]

    @property
    def env_var(self) -> Optional[str]:
        return self.name[1:] if self.name.startswith("$") else None


def dotted(address: Address) -> str:
    """Return an address as the dotted key used in messages and line lookups."""
    return ".".join(str(part) for part in address)


class Resolver:
    """Resolve substitutions lazily, each value at most once.

    Only what is asked for (and what it refers to) is resolved, so an error in one section
    does not stop another section from resolving.

    Args:
        header: The header document, unsubstituted.
        sections: Section name to section mapping, unsubstituted.
        env: Environment variables for ``{{ $VAR }}``.
        locate: Dotted key to 1-based line, for error messages.
        path: The configuration file, for error messages.
    """

    def __init__(
        self,
        header: Mapping[str, Any],
        sections: Mapping[str, Any],
        env: Mapping[str, str],
        *,
        locate: Optional[Locate] = None,
        path: Optional[str] = None,
    ) -> None:
        if HEADER in sections:
            raise ConfigError(
                f"'{HEADER}' is reserved for the header and cannot name a section",
                path=path,
                key=HEADER,
            )
        self._tree: Dict[str, Any] = {HEADER: header, **sections}
        self._env = env
        self._locate = locate
        self._path = path
        self._done: Dict[Address, Any] = {}
        self._failed: Dict[Address, ConfigError] = {}
        self._active: List[Address] = []

    def header(self) -> Dict[str, Any]:
        """Return the header with every substitution resolved."""
        return copy.deepcopy(dict(self._value((HEADER,))))

    def section(self, name: str) -> Dict[str, Any]:
        """Return one section with every substitution resolved (``{}`` for a null section).

        Raises:
            KeyError: There is no such section.
        """
        if name == HEADER or name not in self._tree:
            raise KeyError(name)
        value = self._value((name,))
        return copy.deepcopy(dict(value)) if value is not None else {}

    def errors(self) -> List[ConfigError]:
        """Return every distinct substitution error, header first, then sections in order."""
        found: List[ConfigError] = []
        for address in _string_addresses(self._tree, ()):
            try:
                self._value(address)
            except ConfigError as err:
                if not any(err is seen for seen in found):
                    found.append(err)
        return found

    def _value(self, address: Address) -> Any:
        if address in self._done:
            return self._done[address]
        if address in self._failed:
            raise self._failed[address]
        if address in self._active:
            raise self._cycle(address)
        raw = self._raw(address)
        self._active.append(address)
        try:
            if isinstance(raw, Mapping):
                result: Any = {key: self._value((*address, key)) for key in raw}
            elif isinstance(raw, list):
                result = [self._value((*address, index)) for index in range(len(raw))]
            elif isinstance(raw, str):
                result = self._substitute(raw, address)
            else:
                result = raw
        except ConfigError as err:
            # Every value on the way to the error shares it, so errors() reports it once.
            self._failed[address] = err
            raise
        finally:
            self._active.pop()
        self._done[address] = result
        return result

    def _raw(self, address: Address) -> Any:
        node: Any = self._tree
        for part in address:
            node = node[part]
        return node

    def _substitute(self, text: str, address: Address) -> Any:
        whole = _PATTERN.fullmatch(text)
        if whole is not None:
            ref = self._parse(whole, address)
            value = self._lookup(ref, address)
            if ref.spec is None:
                return copy.deepcopy(value)
            return self._format(value, ref, address)

        def replace(match: re.Match[str]) -> str:
            ref = self._parse(match, address)
            value = self._lookup(ref, address)
            return str(value) if ref.spec is None else self._format(value, ref, address)

        return _PATTERN.sub(replace, text)

    def _parse(self, match: re.Match[str], address: Address) -> _Reference:
        name, colon, spec = match.group(1).partition(":")
        ref = _Reference(match.group(0), name.strip(), spec.strip() if colon else None)
        if ref.name in ("", "$") or any(part == "" for part in ref.name.split(".")):
            raise self._error(f"substitution '{ref.text}' does not name anything", address)
        return ref

    def _lookup(self, ref: _Reference, address: Address) -> Any:
        if ref.env_var is not None:
            if ref.env_var not in self._env:
                raise self._error(
                    f"environment variable '{ref.env_var}' used in '{ref.text}' is not set",
                    address,
                )
            return self._env[ref.env_var]
        parts = ref.name.split(".")
        roots: List[Address] = [address[:1], (HEADER,), ()]
        for root in dict.fromkeys(roots):
            try:
                return self._walk(root, parts)
            except _Missing:
                continue
        raise self._error(f"'{ref.text}' refers to undefined name '{ref.name}'", address)

    def _walk(self, root: Address, parts: List[str]) -> Any:
        """Follow ``parts`` from ``root``; raise _Missing when they lead nowhere."""
        node: Any = self._raw(root)
        here: Optional[Address] = root  # None once we walk inside an already resolved value
        rest = parts
        while rest:
            if isinstance(node, str) and here is not None:
                node, here = self._value(here), None
            key, rest = _step(node, rest)
            node = node[key]
            here = None if here is None else (*here, key)
        if here == self._active[-1]:
            # "run: '{{ run }}'" in a section means the header's run, not itself.
            raise _Missing
        return self._value(here) if here is not None else node

    def _format(self, value: Any, ref: _Reference, address: Address) -> str:
        spec = ref.spec or ""
        kind = spec[-1:]
        try:
            if isinstance(value, str) and kind in _INT_TYPES:
                value = int(value.strip())
            elif isinstance(value, str) and kind in _FLOAT_TYPES:
                value = float(value.strip())
            return format(value, spec)
        except (TypeError, ValueError) as exc:
            raise self._error(f"cannot format {value!r} with '{spec}' in '{ref.text}' ({exc})", address) from None

    def _cycle(self, address: Address) -> ConfigError:
        chain = [*self._active[self._active.index(address) :], address]
        names = " -> ".join(dotted(a) for a in chain)
        return self._error(f"substitution cycle: {names}", address)

    def _error(self, message: str, address: Address) -> ConfigError:
        key = dotted(address)
        line = self._locate(key) if self._locate is not None else None
        return ConfigError(message, path=self._path, key=key, line=line)


def _step(node: Any, parts: List[str]) -> Tuple[Any, List[str]]:
    """Return the key of ``node`` the leading ``parts`` name, and the parts left over."""
    if isinstance(node, Mapping):
        by_name = {str(key): key for key in node}
        # Longest first, so a key spelled with dots ("rayonix.bin_size") is found.
        for count in range(len(parts), 0, -1):
            name = ".".join(parts[:count])
            if name in by_name:
                return by_name[name], parts[count:]
    elif isinstance(node, list) and parts[0].isdigit() and int(parts[0]) < len(node):
        return int(parts[0]), parts[1:]
    raise _Missing


def _string_addresses(node: Any, address: Address) -> Iterator[Address]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _string_addresses(value, (*address, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _string_addresses(value, (*address, index))
    elif isinstance(node, str):
        yield address


def resolve_document(
    header: Mapping[str, Any],
    sections: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    locate: Optional[Locate] = None,
    path: Optional[str] = None,
) -> Dict[str, Any]:
    """Resolve a whole configuration at once.

    Args:
        header: The header document, unsubstituted.
        sections: Section name to section mapping, unsubstituted.
        env: Environment variables for ``{{ $VAR }}``.
        locate: Dotted key to 1-based line, for error messages.
        path: The configuration file, for error messages.

    Returns:
        ``{"header": {...}, "sections": {name: {...}}}`` with every substitution resolved.

    Raises:
        ConfigError: The first substitution error, in file order.
    """
    resolver = Resolver(header, sections, env, locate=locate, path=path)
    errors = resolver.errors()
    if errors:
        raise errors[0]
    return {
        "header": resolver.header(),
        "sections": {name: resolver.section(name) for name in sections},
    }
