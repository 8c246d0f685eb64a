"""The producer's per-event reductions on numpy arrays (tasks/_smd_reduce.py) and its row bookkeeping."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lute_kernel.registry import import_tasks_module

TASKS = Path(__file__).resolve().parents[2] / "tasks"
red = import_tasks_module(str(TASKS), "_smd_reduce")


def test_roi_index_names_the_last_axes() -> None:
    assert red.roi_index([[0, 2], [1, 4]], (3, 5, 6)) == (slice(None), slice(0, 2), slice(1, 4))
    assert red.roi_index([[1, 2], [0, 5], [2, 3]], (3, 5, 6)) == (slice(1, 2), slice(0, 5), slice(2, 3))


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ([[0, 2], [1, 4], [0, 1], [0, 1]], "does not fit"),
        ([[3, 2]], "outside"),
        ([[0, 7]], "outside"),
        ([[0, 1, 2]], "not a \\[start, stop\\) pair"),
        ([], "does not fit"),
    ],
)
def test_bad_rois_are_named(bounds: List[List[int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        red.roi_index(bounds, (3, 5, 6))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(1, 6), min_size=2, max_size=3).flatmap(
        lambda shape: st.tuples(
            st.just(tuple(shape)),
            st.lists(st.tuples(st.integers(0, 5), st.integers(1, 6)), min_size=1, max_size=len(shape)),
        )
    )
)
def test_roi_area_has_the_roi_shape_or_the_bad_roi_is_refused(
    case: Tuple[Tuple[int, ...], List[Tuple[int, int]]],
) -> None:
    shape, pairs = case
    data = np.arange(np.prod(shape), dtype=float).reshape(shape)
    try:
        index = red.roi_index([list(p) for p in pairs], shape)
    except ValueError:
        trailing = shape[len(shape) - len(pairs) :]
        assert any(not 0 <= a < b <= n for (a, b), n in zip(pairs, trailing))
        return
    total, area = red.roi_values(data, index, None)
    assert total == pytest.approx(float(data[index].sum()))
    assert np.array_equal(area.ravel(), data[index].ravel())  # the same pixels, leading singletons dropped
    assert area.ndim == data[index].ndim or area.ndim == 2


def test_roi_values_threshold_and_one_segment_images() -> None:
    data = np.arange(12, dtype=float).reshape(1, 3, 4)
    total, area = red.roi_values(data, red.roi_index([[0, 2], [1, 3]], data.shape), thres_adu=5.0)
    assert area.tolist() == [[0.0, 0.0], [5.0, 6.0]] and total == 11.0  # one segment: a 2-D image


def codes(*fired: int) -> List[int]:
    bits = [0] * 288
    for c in fired:
        bits[c] = 1
    return bits


def test_light_status_follows_smalldata_tools_rules() -> None:
    xpp = red.light_codes("XPP")
    assert xpp == ([-137], [89])
    assert red.light_status(codes(137), xpp) == {"xray": 1, "laser": 1}
    assert red.light_status(codes(137, 89), xpp) == {"xray": 1, "laser": 0}  # 89: the laser shot is dropped
    assert red.light_status(codes(), xpp) == {"xray": 0, "laser": 1}  # no 137: no X-rays
    mfx = red.light_codes("mfx")
    assert red.light_status(codes(137), mfx) == {"xray": 1, "laser": 0}  # 203 must fire for the laser
    assert red.light_status(codes(137, 203), mfx) == {"xray": 1, "laser": 1}
    assert red.light_status(None, mfx) == {"xray": 1, "laser": 1}
    assert red.light_codes("tmo") == red.DEFAULT_LIGHT_CODES


def test_pv_alias_and_wavelength() -> None:
    assert red.pv_alias("ccm_E") == ("ccm_E", "ccm_E")
    assert red.pv_alias(["XPP:MON:ENERGY", "energy"]) == ("XPP:MON:ENERGY", "energy")
    with pytest.raises(ValueError, match="neither a name nor"):
        red.pv_alias(["a", "b", "c"])
    assert red.photon_energy_to_wavelength(12398.4198) == pytest.approx(1e-10)
    with pytest.raises(ValueError):
        red.photon_energy_to_wavelength(0.0)


def test_stack_with_gaps_keeps_rows_aligned() -> None:
    io = import_tasks_module(str(TASKS), "_psana2_io")
    stacked = io.stack_with_gaps([np.ones(2), None, np.zeros(2)])
    assert stacked.shape == (3, 2) and np.isnan(stacked[1]).all()
    ints = io.stack_with_gaps([np.int64(3), None])
    assert ints.tolist() == [3, -1]
    assert np.isnan(io.stack_with_gaps([None, None])).all()
