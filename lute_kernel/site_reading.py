"""Reading a site profile's file: its text, checked before it is read, and the YAML it holds.

Owns refusing what is not a profile before reading it (missing, not a regular file — a FIFO
would be read forever — larger than `MAX_PROFILE_BYTES`, not UTF-8) and parsing it with PyYAML's
safe loader (imported only when a profile is parsed: a profile validated before is not,
``lute_kernel.site_memo``), each failure a ``ConfigError`` naming the file (and line).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from lute_kernel.errors import ConfigError
from lute_kernel.parse_memo import parsed

MAX_PROFILE_BYTES = 1 << 20
"""A profile is a few dozen lines; anything this large is not one (and is not read whole)."""

__all__ = ["MAX_PROFILE_BYTES", "parse_profile", "read_profile_text"]


def read_profile_text(path: Path) -> str:
    """Return the profile's text (ConfigError when it is not a readable, regular, UTF-8 file of a sane size)."""
    where = str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError("site profile does not exist", path=where) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read the site profile: {getattr(exc, 'strerror', None) or exc}", path=where
        ) from None
    if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would be read forever
        raise ConfigError("site profile is not a regular file", path=where)
    if info.st_size > MAX_PROFILE_BYTES:
        raise ConfigError(f"site profile is larger than {MAX_PROFILE_BYTES} bytes: not a profile", path=where)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_PROFILE_BYTES + 1)
        return raw.decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the site profile: {exc.strerror or exc}", path=where) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"site profile is not UTF-8 text ({exc.reason} at byte {exc.start})", path=where) from None


def parse_profile(text: str, where: str) -> Any:
    """Return the profile's YAML as PyYAML's safe loader makes it (ConfigError naming ``where`` and the line)."""
    return parsed(("site", text), lambda: _parse_with_pyyaml(text, where))


def _parse_with_pyyaml(text: str, where: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"site profile is not valid YAML: {exc}", path=where, line=line) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # bad tags (!!float "x"), deep nesting
        raise ConfigError(f"site profile is not valid YAML: {type(exc).__name__}: {exc}", path=where) from None
