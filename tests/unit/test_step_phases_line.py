"""A step's phases as its kernel's JSON line carries them: only names with finite numbers reach the flow."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flows.backends.local import result_from_line

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**308, max_value=10**400)
    | st.floats()
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)


@given(st.one_of(_json, st.dictionaries(st.text(max_size=12), _json, max_size=6)))
def test_whatever_the_line_says_the_phases_are_finite_numbers_by_name(phases: Any) -> None:
    line = {"kind": "outcome", "status": "COMPLETED", "task": "Test", "phases": phases}
    kept = result_from_line("Test", line, 1.0).extra["phases"]
    assert all(isinstance(name, str) and isinstance(ms, float) and math.isfinite(ms) for name, ms in kept.items())
    if isinstance(phases, dict):
        assert set(kept) == {k for k, v in phases.items() if _finite_number(v)}


def _finite_number(value: Any) -> bool:
    if type(value) not in (int, float):  # bool is no number here
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def test_a_line_without_phases_has_none() -> None:
    assert result_from_line("Test", {"kind": "outcome", "status": "FAILED"}, 1.0).extra["phases"] == {}
