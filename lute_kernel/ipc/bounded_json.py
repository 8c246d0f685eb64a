r"""Parsing one JSON header from a peer with bounded cost: nesting depth, numbers and text checked.

Owns turning header bytes into Python values or a ``ProtocolError``, and nothing else: no field
meanings (``schema``), no frames (``protocol``). The nesting depth is measured *before*
``json.loads`` with C-speed byte operations and no recursion, so a deeply nested header cannot
raise ``RecursionError``; numbers are bounded inside the parser (no ``inf``/``nan``, no ``1e400``,
integers within a signed 64-bit range, no digit strings long enough to hit Python's int limit);
lone surrogates (``"\ud800"``) become U+FFFD so nothing downstream fails to print or store text.
Stdlib only: the worker imports this in every image.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable, Tuple, Union

from lute_kernel.errors import ProtocolError

MAX_DEPTH = 64
"""Deepest nesting of lists and objects a header may have (json.loads would recurse ~1000 deep)."""
INT_LIMIT = 1 << 63
"""Integers must lie in [-2**63, 2**63): what the run database can store."""
_MAX_INT_DIGITS = 19  # 2**63 has 19 digits: longer digit strings are refused before int() sees them
_MAX_FLOAT_CHARS = 64  # repr() of any float is at most ~24 characters

_BRACKETS_ONLY = bytes.maketrans(b"{}", b"[]")
_NOT_MARKS = bytes(b for b in range(256) if b not in b'[]{}"')
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


class _Refused(Exception):
    """Raised from inside json.loads by a number hook; turned into a ProtocolError."""


def structure_depth_exceeds(text: bytes, limit: int = MAX_DEPTH) -> bool:
    """Return True when ``text`` (JSON) nests lists/objects deeper than ``limit``.

    Exact for valid JSON; for invalid JSON it may answer either way (json.loads then refuses it).
    Linear scans only: escapes removed (pairs of backslashes first, as JSON pairs them), then only
    quotes and brackets kept, strings removed, then innermost ``[]`` pairs removed once per level.
    """
    if text.count(b"[") + text.count(b"{") <= limit:  # cannot nest deeper than it has brackets
        return False
    if b"\\" in text:
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Without escapes, quotes alternate opening and closing strings. Two adjacent quotes (nothing
    # but text between them) either close and open strings with no bracket outside between them,
    # or enclose a string without brackets: removing them keeps every bracket outside a string and
    # the alternation of the rest. That leaves few quotes (strings holding brackets) to split on.
    marks = text.translate(None, _NOT_MARKS).replace(b'""', b"")
    if b'"' in marks:
        marks = b"".join(marks.split(b'"')[::2])  # every other piece is outside a string
    brackets = marks.translate(_BRACKETS_ONLY)
    if b"[" * (limit + 1) in brackets:  # the common hostile case, found without the passes below
        return True
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")  # removes at least one level of every branch
    return bool(brackets)


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise _Refused(f"an integer with {len(text.lstrip('-'))} digits")
    value = int(text)
    if not -INT_LIMIT <= value < INT_LIMIT:
        raise _Refused(f"the integer {value} is outside [-2**63, 2**63)")
    return value


def _parse_float(text: str) -> float:
    if len(text) > _MAX_FLOAT_CHARS:
        raise _Refused(f"a {len(text)}-character number")
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text} is not finite")
    return value


def _parse_constant(text: str) -> Any:
    raise _Refused(f"{text} is not a JSON number")


Scanner = Callable[[str, int], Tuple[Any, int]]
# The C scanner each JSONDecoder makes for itself: json.loads without its Python wrappers.
_CHECKED: Scanner = vars(
    json.JSONDecoder(parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
)["scan_once"]
_FAST: Scanner = vars(json.JSONDecoder(parse_constant=_parse_constant))["scan_once"]
_SHAPE = bytes.maketrans(b"123456789E+{", b"000000000ee[")
"""Digits become 0, exponents (and their plus signs) e, objects lists: one copy answers the quick questions."""


def _may_hold_big_numbers(shape: bytes) -> bool:
    """False when no digit run reaches 18 digits and no exponent of 3 digits is positive (strings included).

    Then every int is below 10**18 and every float finite (a negative exponent makes a float no
    bigger), and the C parser needs no Python hook per number (a log message decodes twice as
    fast). Byte searches only: no regex backtracking. In ``shape``, ``e+000`` reads ``ee000``.
    """
    return b"000000000000000000" in shape or b"e000" in shape


def _scrub(value: Any) -> Any:
    """Replace lone surrogates in every string (keys too) by U+FFFD; depth is bounded already."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return value
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def load_header(data: Union[bytes, memoryview], *, max_header_bytes: int) -> Any:
    """Parse one header frame; raise ProtocolError for anything outside the limits.

    Args:
        data: The frame's bytes (UTF-8 JSON).
        max_header_bytes: Largest header accepted, checked before anything is parsed.
    """
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size > max_header_bytes:
        raise ProtocolError(
            f"header frame of {size} bytes exceeds the {max_header_bytes}-byte header limit;"
            " send arrays as numpy arrays (raw frames) or write large data to a file under work_dir"
        )
    raw = bytes(data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"header frame is not UTF-8: {exc.reason} at byte {exc.start}") from None
    shape = raw.translate(_SHAPE)
    if shape.count(b"[") > MAX_DEPTH and structure_depth_exceeds(raw):
        raise ProtocolError(f"header nests lists or objects deeper than {MAX_DEPTH} levels")
    try:
        value, end = (_CHECKED if _may_hold_big_numbers(shape) else _FAST)(text, 0)
    except StopIteration:
        raise ProtocolError("header frame is not JSON: no value at its start") from None
    except _Refused as exc:
        raise ProtocolError(f"header holds {exc}") from None
    except RecursionError:  # invalid JSON with a deep valid prefix: the depth scan may not see it
        raise ProtocolError(f"header nests lists or objects deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise ProtocolError(f"header frame is not JSON: {exc}") from None
    if end != len(text) and text[end:].strip(" \t\n\r"):
        raise ProtocolError(f"header frame is not JSON: extra data after byte {end}")
    return _scrub(value) if _SURROGATE_ESCAPE.search(raw) else value
