"""The resolver behind :mod:`lute_kernel.config.substitution`: lazy, memoised, iterative.

Owns resolving addresses of a configuration's tree (``("Task", "key", 0)``; the header is
``("lute_config", ...)``): each value at most once, with an explicit stack instead of Python
recursion, so a chain of any length resolves or fails with a message, never a RecursionError.
An attempt at an address that needs values not yet resolved asks for them (``_Need``) and is tried
again once they are; an address that needs one still waiting on it is a cycle. Budgets on what
substitution produces are charged as it goes (:mod:`lute_kernel.config.budget`). Must not read
files, the process environment, or know which Tasks exist.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple, Union

from lute_kernel.config.budget import SCALAR, Measure, OverBudget, SubstitutionBudget, combined, measure
from lute_kernel.config.limits import DEFAULT_LIMITS, ConfigLimits
from lute_kernel.config.references import PATTERN, Reference, SpecError, format_value, parse_reference, shorten
from lute_kernel.errors import ConfigError

HEADER = "lute_config"
"""The name the header goes by in substitutions and dotted keys."""

Address = Tuple[Union[str, int], ...]
Locate = Callable[[str], Optional[int]]


class _Missing(Exception):
    """A name is not found under one candidate root; the next candidate may have it."""


class _Need(Exception):
    """An attempt needs values that are not resolved yet; resolve them, then try again."""

    def __init__(self, addresses: List[Address]) -> None:
        super().__init__()
        self.addresses = addresses


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
        limits: Bounds on what substitution may produce.
    """

    def __init__(
        self,
        header: Mapping[str, Any],
        sections: Mapping[str, Any],
        env: Mapping[str, str],
        *,
        locate: Optional[Locate] = None,
        path: Optional[str] = None,
        limits: ConfigLimits = DEFAULT_LIMITS,
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
        self._limits = limits
        self._done: Dict[Address, Any] = {}
        self._measures: Dict[Address, Measure] = {}
        self._failed: Dict[Address, ConfigError] = {}
        self._current: Address = ()
        self._names: Dict[int, Tuple[Any, Dict[str, Any]]] = {}
        self._budget = SubstitutionBudget(limits)

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
        seen: Set[int] = set()
        for address in _string_addresses(self._tree):
            try:
                self._value(address)
            except ConfigError as err:
                if id(err) not in seen:  # errors live in self._failed, so ids stay theirs
                    seen.add(id(err))
                    found.append(err)
        return found

    # --- the driver: an explicit stack of addresses to resolve ------------------------------------

    def _value(self, target: Address) -> Any:
        if target in self._done:
            return self._done[target]
        if target in self._failed:
            raise self._failed[target]
        stack = [target]
        waiting: Set[Address] = set()  # attempted, now waiting for what they asked for
        asked_by: Dict[Address, Address] = {}
        while stack:
            address = stack[-1]
            if address in self._done:
                stack.pop()
                continue
            if address in self._failed:
                raise self._fail(self._failed[address], address, asked_by)
            self._current = address
            try:
                self._done[address] = self._attempt(address)
            except _Need as need:
                waiting.add(address)
                for wanted in need.addresses:
                    # Everything above a waiting address on the stack is something it needs.
                    if wanted in waiting:
                        raise self._fail(self._cycle(wanted, address, asked_by), address, asked_by) from None
                    asked_by[wanted] = address
                stack.extend(reversed(need.addresses))
                continue
            except ConfigError as err:
                raise self._fail(err, address, asked_by) from None
            waiting.discard(address)
            stack.pop()
        return self._done[target]

    def _fail(self, err: ConfigError, address: Address, asked_by: Dict[Address, Address]) -> ConfigError:
        # Every value on the way to the error shares it, so errors() reports it once.
        seen: Set[Address] = set()
        here: Optional[Address] = address
        while here is not None and here not in seen:
            seen.add(here)
            self._failed[here] = err
            here = asked_by.get(here)
        return err

    def _cycle(self, start: Address, last: Address, asked_by: Dict[Address, Address]) -> ConfigError:
        back = [last]  # last, whoever asked for it, ... back to start
        while back[-1] != start:
            previous = asked_by.get(back[-1])
            if previous is None or previous in back:
                break
            back.append(previous)
        chain = list(reversed(back))
        if chain[0] != start:
            chain.insert(0, start)
        names = [shorten(dotted(a), 80) for a in [*chain, start]]
        if len(names) > 12:
            names = [*names[:5], f"... ({len(names) - 10:,} more) ...", *names[-5:]]
        return self._error(f"substitution cycle: {' -> '.join(names)}", start)

    # --- one attempt at one address ---------------------------------------------------------------

    def _attempt(self, address: Address) -> Any:
        raw = self._raw(address)
        if isinstance(raw, (Mapping, list)):
            keys = list(raw) if isinstance(raw, Mapping) else list(range(len(raw)))
            children = [(*address, key) for key in keys]
            for child in children:
                if child in self._failed:
                    raise self._failed[child]
            missing = [child for child in children if child not in self._done]
            if missing:
                raise _Need(missing)
            self._measures[address] = combined([self._measures[child] for child in children])
            if isinstance(raw, Mapping):
                return {key: self._done[child] for key, child in zip(keys, children)}
            return [self._done[child] for child in children]
        if isinstance(raw, str):
            return self._substitute(raw, address)
        self._measures[address] = SCALAR
        return raw

    def _substitute(self, text: str, address: Address) -> Any:
        matches = list(PATTERN.finditer(text))
        if not matches:
            self._measures[address] = (1, len(text), 1)
            return text
        refs = [self._parse(match, address) for match in matches]
        found: Dict[str, Tuple[Any, Optional[Measure]]] = {}
        needed: List[Address] = []
        for ref in refs:
            if ref.name not in found:
                try:
                    found[ref.name] = self._lookup(ref, address)
                except _Need as need:
                    needed.extend(need.addresses)
        if needed:
            raise _Need(list(dict.fromkeys(needed)))
        if len(matches) == 1 and matches[0].group(0) == text:
            value, size = found[refs[0].name]
            if refs[0].spec is not None:
                return self._charged(self._format(value, refs[0], address), address)
            return self._copied_value(value, size, address)
        pieces: List[str] = []
        produced, end = 0, 0
        for match, ref in zip(matches, refs):
            value = found[ref.name][0]
            piece = str(value) if ref.spec is None else self._format(value, ref, address)
            produced += len(piece)
            self._check_chars(produced, address)
            pieces += [text[end : match.start()], piece]
            end = match.end()
        pieces.append(text[end:])
        return self._charged("".join(pieces), address)

    def _charged(self, text: str, address: Address) -> str:
        try:
            self._budget.charge_text(len(text))
        except OverBudget as exc:
            raise self._error(str(exc), address) from None
        self._measures[address] = (1, len(text), 1)
        return text

    def _check_chars(self, count: int, address: Address) -> None:
        try:
            self._budget.check_text(count)
        except OverBudget as exc:
            raise self._error(str(exc), address) from None

    def _copied_value(self, value: Any, size: Optional[Measure], address: Address) -> Any:
        size = size if size is not None else measure(value)
        try:
            self._budget.charge_copy(size, len(address))
        except OverBudget as exc:
            raise self._error(str(exc), address) from None
        self._measures[address] = size
        return copy.deepcopy(value) if isinstance(value, (Mapping, list)) else value

    def _parse(self, match: re.Match[str], address: Address) -> Reference:
        ref = parse_reference(match)
        if not ref.names_something:
            raise self._error(f"substitution '{ref.shown}' does not name anything", address)
        return ref

    def _lookup(self, ref: Reference, address: Address) -> Tuple[Any, Optional[Measure]]:
        if ref.env_var is not None:
            if ref.env_var not in self._env:
                raise self._error(
                    f"environment variable '{shorten(ref.env_var, 80)}' used in '{ref.shown}' is not set", address
                )
            value = self._env[ref.env_var]
            return value, (1, len(value), 1)
        parts = ref.name.split(".")
        roots: List[Address] = [address[:1], (HEADER,), ()]
        for root in dict.fromkeys(roots):
            try:
                return self._walk(root, parts)
            except _Missing:
                continue
        raise self._error(f"'{ref.shown}' refers to undefined name '{shorten(ref.name, 80)}'", address)

    def _walk(self, root: Address, parts: List[str]) -> Tuple[Any, Optional[Measure]]:
        """Follow ``parts`` from ``root``; raise _Missing when they lead nowhere."""
        node: Any = self._raw(root)
        here: Optional[Address] = root  # None once we walk inside an already resolved value
        rest = parts
        while rest:
            if isinstance(node, str) and here is not None:
                node, here = self._resolved(here), None
            key, rest = self._step(node, rest)
            node = node[key]
            here = None if here is None else (*here, key)
        if here is None:
            return node, None
        if here == self._current:
            # "run: '{{ run }}'" in a section means the header's run, not itself.
            raise _Missing
        return self._resolved(here), self._measures[here]

    def _resolved(self, address: Address) -> Any:
        if address in self._done:
            return self._done[address]
        if address in self._failed:
            raise self._failed[address]
        raise _Need([address])

    def _step(self, node: Any, parts: List[str]) -> Tuple[Any, List[str]]:
        """Return the key of ``node`` the leading ``parts`` name, and the parts left over."""
        if isinstance(node, Mapping):
            by_name = self._names_of(node)
            # Longest first, so a key spelled with dots ("rayonix.bin_size") is found.
            for count in range(len(parts), 0, -1):
                name = ".".join(parts[:count])
                if name in by_name:
                    return by_name[name], parts[count:]
        elif (
            isinstance(node, list)
            and parts[0].isascii()
            and parts[0].isdigit()
            and len(parts[0]) < 12
            and int(parts[0]) < len(node)
        ):
            return int(parts[0]), parts[1:]
        raise _Missing

    def _names_of(self, node: Mapping[Any, Any]) -> Dict[str, Any]:
        # Cached per mapping (kept alive with it), so many references into one large section
        # cost one pass over its keys, not one each.
        cached = self._names.get(id(node))
        if cached is None or cached[0] is not node:
            cached = (node, {str(key): key for key in node})
            self._names[id(node)] = cached
        return cached[1]

    def _raw(self, address: Address) -> Any:
        node: Any = self._tree
        for part in address:
            node = node[part]
        return node

    def _format(self, value: Any, ref: Reference, address: Address) -> str:
        spec = ref.spec or ""
        try:
            return format_value(value, spec, self._limits)
        except SpecError as exc:
            shown = f"cannot format {shorten(repr(value), 60)} with '{shorten(spec, 40)}' in '{ref.shown}'"
            raise self._error(f"{shown} ({exc})", address) from None

    def _error(self, message: str, address: Address) -> ConfigError:
        key = dotted(address)
        line = self._locate(key) if self._locate is not None else None
        return ConfigError(message, path=self._path, key=shorten(key, 200), line=line)


def _string_addresses(tree: Mapping[str, Any]) -> Iterator[Address]:
    stack: List[Tuple[Any, Address]] = [(tree, ())]
    while stack:
        node, address = stack.pop()
        if isinstance(node, Mapping):
            stack.extend(((value, (*address, key)) for key, value in reversed(list(node.items()))))
        elif isinstance(node, list):
            stack.extend(((value, (*address, index)) for index, value in reversed(list(enumerate(node)))))
        elif isinstance(node, str):
            yield address


__all__ = ["HEADER", "Address", "Locate", "Resolver", "dotted"]
