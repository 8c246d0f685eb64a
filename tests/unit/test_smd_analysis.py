"""The analyzers' arithmetic (tasks/_smd_analysis.py): filters, normalisation, binning, edges, projections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lute_kernel.registry import import_tasks_module

TASKS = Path(__file__).resolve().parents[2] / "tasks"
ana = import_tasks_module(str(TASKS), "_smd_analysis")


def test_filters_are_upstreams_named_masks() -> None:
    filters = ana.standard_filters([1, 1, 0, 1], [1, 0, 1, 1], [900, 1200, 5, 300], [50, 5, 0, 50], 500, 10)
    assert {k: v.tolist() for k, v in filters.items()} == {
        "xray on": [True, True, False, True],
        "xray off": [False, False, True, False],
        "laser on": [True, False, True, True],
        "laser off": [False, True, False, False],
        "ipm": [True, True, False, False],
        "total scattering": [True, False, False, True],
    }
    assert ana.combine(filters, ana.LASER_ON).tolist() == [True, False, False, False]
    assert ana.combine(filters, ("xray on", "no such filter")).tolist() == [True, True, False, True]
    missing = ana.standard_filters([1, 1], [1, 1], None, None, 500, 10)
    assert missing["ipm"].tolist() == missing["total scattering"].tolist() == [True, True]


def test_q_range_norm_and_normalise() -> None:
    q = np.array([0.5, 1.0, 2.0, 3.0, 4.0])
    az = np.arange(2 * 3 * 5, dtype=float).reshape(2, 3, 5)
    norm = ana.q_range_norm(az, q, (0.9, 3.5))
    assert norm.tolist() == az[..., 1:4].mean(axis=-1).tolist()
    normed = ana.normalise(az, norm)
    assert np.allclose(normed[..., 1:4].mean(axis=-1), 1.0)
    zero = ana.normalise(np.ones((1, 1, 2)), np.zeros((1, 1)))
    assert np.isnan(zero).all()  # a zero norm skips the profile
    with pytest.raises(ValueError, match="no q values inside"):
        ana.q_range_norm(az, q, (5.0, 6.0))


def test_bins_exact_values_and_histogram_edges() -> None:
    bins, exact = ana.scan_bins(np.array([2.0, 1.0, 2.0, np.nan]), fast=False)
    assert (bins.tolist(), exact) == ([0.0, 1.0, 2.0], True)  # NaN counts as 0, as upstream
    assert ana.bin_index(np.array([1.0, 2.0, 1.5, 0.0]), bins, True).tolist() == [1, 2, -1, 0]
    edges, exact = ana.scan_bins(np.array([0.0, 1.0, 2.0, 4.0]), fast=True, nbins=4)
    assert (edges.tolist(), exact) == ([0.0, 1.0, 2.0, 3.0, 4.0], False)
    keys = np.array([-0.1, 0.0, 0.99, 1.0, 3.5, 4.0, 4.1])
    assert ana.bin_index(keys, edges, False).tolist() == [-1, 0, 0, 1, 3, 3, -1]  # the last edge is closed


def test_setpoint_edges_are_halfway() -> None:
    assert ana.setpoint_edges(np.array([7101.0, 7100.0, 7102.0, 7101.0, np.nan])).tolist() == [
        7100.0,
        7100.5,
        7101.5,
        7102.0,
    ]


def test_binned_sums_ignore_nan_and_unbinned_events() -> None:
    values = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 6.0], [7.0, 8.0]])
    sums, counts = ana.binned_sums(values, np.array([0, 0, 1, -1]), 2)
    assert sums.tolist() == [[4.0, 2.0], [5.0, 6.0]] and counts.tolist() == [[2.0, 1.0], [1.0, 1.0]]
    assert ana.mean_of(sums, counts).tolist() == [[2.0, 2.0], [5.0, 6.0]]
    assert np.isnan(ana.mean_of(np.zeros(1), np.zeros(1))).all()


@settings(max_examples=100, deadline=None)
@given(
    arrays(np.float64, st.integers(1, 40), elements=st.floats(-1e3, 1e3) | st.just(np.nan)),
    st.integers(1, 5),
    st.integers(0, 40),
)
def test_ranks_adding_their_sums_equals_one_process(values: np.ndarray, nbins: int, split: int) -> None:
    # The analyzers' MPI reduction: each rank bins its slice, the sums and counts are added.
    index = np.arange(values.size) % (nbins + 1) - 1  # some events in no bin
    whole = ana.binned_sums(values, index, nbins)
    cut = min(split, values.size)
    parts = [ana.binned_sums(values[s], index[s], nbins) for s in (slice(0, cut), slice(cut, None))]
    assert np.allclose(parts[0][0] + parts[1][0], whole[0]) and np.array_equal(parts[0][1] + parts[1][1], whole[1])
    assert whole[1].sum() == np.count_nonzero(np.isfinite(values) & (index >= 0))


def test_peak_position_is_exact_for_a_parabola() -> None:
    x = np.arange(10, dtype=float)
    assert ana.peak_position(x, -((x - 4.3) ** 2)) == pytest.approx(4.3)
    assert ana.peak_position(x, (x - 4.6) ** 2 * -1 - 5, largest_absolute=True) == pytest.approx(
        0.0
    )  # |y| largest at 0
    assert ana.peak_position(x, x) == 9.0  # at the edge: no refinement


def test_strongest_bin_and_half_rise() -> None:
    diff = np.array([[0.0, 0.1, -0.9], [0.0, 0.2, 0.3]])
    assert ana.strongest_bin(diff) == 2
    t = np.linspace(-2, 2, 9)
    step = np.where(t >= 0.25, 1.0, 0.0)
    assert ana.half_rise(t, step) == pytest.approx(0.25, abs=0.5)
    assert ana.half_rise(t, np.linspace(0, 1, 9)) == pytest.approx(0.0)  # a ramp crosses half at its middle
    assert ana.half_rise(t, -np.linspace(0, 1, 9)) == pytest.approx(0.0)  # falling works too
    assert ana.half_rise(t[:2], step[:2]) is None


def test_edge_position_of_an_arctan_edge() -> None:
    energies = np.arange(7100.0, 7125.0, 1.0)
    spectrum = 1 + 0.8 * (0.5 + np.arctan((energies - 7112.3) / 1.0) / np.pi)
    assert ana.edge_position(energies, spectrum) == pytest.approx(7112.3, abs=0.15)


def test_emission_projection_follows_upstreams_axes() -> None:
    rows, cols = np.mgrid[0:20, 0:12]
    image = np.exp(-0.5 * ((rows - 7) / 1.0) ** 2) * np.exp(-0.5 * ((cols - 4) / 1.5) ** 2)
    areas = np.stack([image, 2 * image])
    center = ana.spatial_center(areas.sum(axis=0), invert=False)
    assert center == 4  # the brightest column
    spectra = ana.project_spectra(areas, center, invert=False)
    assert spectra.shape == (2, 20) and int(np.argmax(spectra[0])) == 7 and np.allclose(spectra[1], 2 * spectra[0])
    swapped = ana.project_spectra(np.transpose(areas, (0, 2, 1)), ana.spatial_center(image.T, invert=True), invert=True)
    assert np.allclose(swapped, spectra)
