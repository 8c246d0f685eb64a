"""The numpy parts of the geometry algorithms: AgBh rings and scores, BayFAI's Gaussian process and grid.

scipy and pyFAI (peak finding, centre refinement, ring extraction) run in the psana2 image:
tests/integration/test_geometry.py checks the whole searches on a simulated powder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lute_kernel.registry import import_tasks_module

TASKS = Path(__file__).resolve().parents[2] / "tasks"
agbh = import_tasks_module(str(TASKS), "_agbh")
bo = import_tasks_module(str(TASKS), "_bayfai_opt")


def rings_image(shape=(120, 140), center=(71.3, 58.6), spacing=15.0) -> np.ndarray:
    y, x = np.indices(shape)
    r = np.hypot(x - center[0], y - center[1])
    image = np.zeros(shape)
    for n in range(1, 6):
        image += 100 * np.exp(-0.5 * ((r - n * spacing) / 0.8) ** 2)
    return image


def test_center_guesses_are_the_grid_around_the_guess() -> None:
    assert agbh.center_guesses((100, 120), (-2, 2, 3), (0, 0, 1)) == [(58.0, 50.0), (60.0, 50.0), (62.0, 50.0)]
    assert agbh.center_guesses((100, 120), (0, 0, 1), (-1, 1, 2), guess=(10, 20)) == [(10.0, 19.0), (10.0, 21.0)]


def test_the_radial_profile_peaks_on_the_rings_only_about_the_true_centre() -> None:
    image = rings_image()
    sharp = agbh.radial_profile(image, None, (71.3, 58.6))
    blurred = agbh.radial_profile(image, None, (66.3, 58.6))
    peaks = [int(np.argmax(sharp[15 * n - 5 : 15 * n + 6])) + 15 * n - 5 for n in (1, 2, 3)]
    assert all(abs(p - 15 * n) <= 1 for p, n in zip(peaks, (1, 2, 3)))  # 1-pixel bins from the floor of r
    assert sharp.max() > 1.5 * blurred.max()
    masked = agbh.radial_profile(image, np.zeros_like(image), (71.3, 58.6))
    assert not masked.any()  # every pixel masked: nothing left
    assert agbh.radial_profile(np.full((4, 4), 5.0), None, (1.5, 1.5), threshold=10).tolist() == [0.0, 0.0, 0.0]


def test_behenate_spacing_is_found_from_its_rings() -> None:
    d_spacing = 1 / agbh.AGBH_D001
    rings, score = agbh.score_ring_spacing(d_spacing * np.arange(1, 7))
    assert rings[0] == pytest.approx(d_spacing, rel=5e-3) and score > 2
    _, random_score = agbh.score_ring_spacing(np.array([0.0123, 0.0371, 0.0404, 0.0899]))
    assert random_score < score


def test_best_of_prefers_refined_centres() -> None:
    start = agbh.Candidate(5.0, 99.0, (10.0, 10.0))
    refined = agbh.Candidate(4.0, 100.0, (10.3, 9.7), refined=True)
    assert agbh.best_of([start, refined]) is refined
    assert agbh.best_of([start]) is start


def test_edge_resolution_is_upstreams_formula() -> None:
    two_theta = np.arctan(128 * 0.1 / 100.0)
    assert agbh.edge_resolution((256, 256), 0.1, 100.0, 1.3) == pytest.approx(1.3 / (2 * np.sin(two_theta / 2)))


def test_the_gaussian_process_interpolates_and_is_unsure_far_away() -> None:
    x = np.array([[-0.5], [0.0], [0.5]])
    y = np.array([1.0, -1.0, 2.0])
    gp = bo.GaussianProcess()
    gp.fit(x, y)
    mean, std = gp.predict(x)
    assert np.allclose(mean, y, atol=0.01) and (std < 0.05).all()
    _, far = gp.predict(np.array([[5.0]]))
    assert far[0] == pytest.approx(1.0, abs=1e-3)
    grid = np.linspace(-1, 1, 21)[:, None]
    best = bo.ucb_next(gp, grid, visited=[15], beta=1.96)
    assert best != 15 and 0 <= best < 21


def test_the_search_grid_covers_the_bounds_of_the_free_parameters() -> None:
    center = {"dist": 0.1, "poni1": 0.01, "poni2": 0.02, "rot1": 0.0, "rot2": 0.0, "rot3": 0.0}
    bounds = {"poni1": (-0.001, 0.001), "poni2": (-0.0005, 0.0005)}
    res = {"poni1": 0.0005, "poni2": 0.0005}
    full, scaled, (mins, maxs) = bo.search_grid(center, bounds, res, ["poni1", "poni2"])
    assert full.shape == (5 * 3, 6) and scaled.min() == -1 and scaled.max() == 1
    assert np.allclose(mins, [0.009, 0.0195]) and np.allclose(maxs, [0.011, 0.0205])
    assert (full[:, 0] == 0.1).all() and (full[:, 3:] == 0).all()
