"""How much work a configuration file may cause: the bounds every stage of loading enforces.

Owns the numbers and their reasons, in one place, so the reader, the YAML layer and the resolver
agree and tests can shrink them. A LUTE configuration is a few kilobytes; every bound here is
orders of magnitude above what a real one needs, and low enough that the worst input within it
loads in seconds and a few hundred megabytes. Must not read files or parse anything.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class ConfigLimits:
    """Bounds on reading, parsing and substituting one configuration file.

    Attributes:
        max_bytes: Largest file read (16 MiB). The reader refuses a larger file before
            reading it and never reads more than this plus one byte.
        max_values: Values (scalars, mappings, lists, aliases) written in the file (1,000,000).
            Composing keeps a node and two marks per value, a few hundred bytes each: a file
            of ``[0,0,0,…]`` within 16 MiB would otherwise hold 8 million of them.
        max_depth: Deepest nesting of mappings and lists, counted through aliases and after
            substitution (100). Keeps every later walk (copying, validation, JSON, the DB)
            far from Python's recursion limit.
        max_alias_expansion: Values that aliases (``*name``, ``<<: *name``) may add to a
            document beyond the values written in it (100,000). Aliases share one node, but
            every later walk sees each use: ten levels of ten aliases are 10^10 values.
        max_format_width: Largest width or precision in a ``{{ name:spec }}`` format spec
            (1,000 characters).
        max_spec_length: Longest format spec (100 characters).
        max_substituted_chars: Characters that substitution may produce in the whole file
            (16 MiB): strings built from ``{{ ... }}`` and the strings inside copied values.
        max_copied_values: Values that whole-value substitutions (``"{{ Task.mapping }}"``)
            may copy in the whole file (1,000,000).
    """

    max_bytes: int = 16 * MIB
    max_values: int = 1_000_000
    max_depth: int = 100
    max_alias_expansion: int = 100_000
    max_format_width: int = 1000
    max_spec_length: int = 100
    max_substituted_chars: int = 16 * MIB
    max_copied_values: int = 1_000_000


DEFAULT_LIMITS = ConfigLimits()
"""The limits ``load_config`` uses unless told otherwise."""


def size_text(count: int) -> str:
    """Return a byte count for people: ``16 MiB``, ``2.5 MiB``, ``900 bytes``."""
    if count >= MIB:
        mib = count / MIB
        return f"{mib:.0f} MiB" if mib == int(mib) else f"{mib:.1f} MiB"
    return f"{count:,} bytes"


__all__ = ["DEFAULT_LIMITS", "MIB", "ConfigLimits", "size_text"]
