"""Beam centre and detector distance from a silver-behenate powder: upstream's exhaustive search.

Owns the algorithm of ``OptimizeAgBhGeometryExhaustive`` (upstream LUTE's ``lute/tasks/geometry.py``
and ``_geometry.py``, after btx): the radial profile about a centre; its peaks scored against
behenate's equidistant rings in 1/d; the distance from the best ring spacing; the centre refined by
least squares so that the rings pass through the brightest pixels; repeated from every starting
centre of a (dx, dy) grid, keeping the best-scoring answer. Centres are (x, y) = (column, row)
pixels, distances millimetres, wavelengths Angstrom, as upstream. numpy and scipy only; it must not
read files or know MPI.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
AGBH_D001 = 58.38  # Angstrom: silver behenate's long spacing (pyFAI's AgBh calibrant, first ring)
AGBH_Q0 = 2 * np.pi / AGBH_D001  # upstream's q0 = 0.1076 1/Angstrom


@dataclass(frozen=True)
class Candidate:
    """One answer: its score (higher is better), distance (mm), centre (x, y) in pixels, refined or not."""

    score: float
    distance: float
    center: Tuple[float, float]
    refined: bool = False


def center_guesses(
    shape: Tuple[int, int], dx: Sequence[float], dy: Sequence[float], guess: Optional[Sequence[float]] = None
) -> List[Tuple[float, float]]:
    """Starting centres: the guess (default: the image centre) plus every (dx, dy) grid offset."""
    cx, cy = (float(guess[0]), float(guess[1])) if guess is not None else (shape[1] / 2.0, shape[0] / 2.0)
    xs = np.linspace(dx[0], dx[1], int(dx[2]))
    ys = np.linspace(dy[0], dy[1], int(dy[2]))
    return [(cx + ox, cy + oy) for ox, oy in itertools.product(xs, ys)]


def radial_profile(powder: Array, mask: Optional[Array], center: Tuple[float, float], threshold: float = 10.0) -> Array:
    """Mean intensity in 1-pixel rings about ``center``; values below ``threshold`` become 0."""
    y, x = np.indices(powder.shape)
    radius = np.hypot(x - center[0], y - center[1]).astype(np.int64)
    weights = powder if mask is None else np.where(mask != 0, powder, 0.0)
    counts = np.bincount(radius.ravel(), weights=None if mask is None else (mask != 0).ravel().astype(float))
    totals = np.bincount(radius.ravel(), weights=weights.ravel())
    profile = np.divide(totals, counts, out=np.zeros_like(totals), where=counts > 0)
    profile[profile < threshold] = 0
    return profile


def score_ring_spacing(q_peaks: Array) -> Tuple[Array, float]:
    """Best behenate ring spacing in 1/d for the observed peaks: (predicted rings, score).

    The score is how much the best spacing beats the average one, in standard deviations (0 when
    nothing fits), as upstream's ``_calc_and_score_ideal_rings``.
    """
    delta_qs = np.arange(0.01, 0.03, 0.00005)
    order_max = 13
    qround = np.round(q_peaks, 5)
    scores = []
    for dq in delta_qs:
        order = qround / dq
        remainder = np.minimum(qround % dq, np.abs(dq - (qround % dq)))
        inside = remainder[order < order_max]
        scores.append(np.mean(inside) / dq if inside.size else np.nan)
    scores_a = np.asarray(scores)
    if not np.isfinite(scores_a).any():
        return np.zeros(order_max), 0.0
    best = delta_qs[int(np.nanargmin(scores_a))]
    rings = np.arange(best, best * (order_max + 1), best)
    final = (np.nanmean(scores_a) - np.nanmin(scores_a)) / np.nanstd(scores_a)
    return rings, float(final) if np.isfinite(final) else 0.0


def find_peaks(profile: Array) -> npt.NDArray[np.int64]:
    """Ring radii: peaks of the radial profile (scipy's find_peaks, upstream's settings)."""
    from scipy.signal import find_peaks as scipy_find_peaks

    peaks, _ = scipy_find_peaks(profile, prominence=1, distance=10)
    return np.asarray(peaks, dtype=np.int64)


def distance_from_profile(
    profile: Array, distance_guess: float, wavelength: float, pixel_size: float
) -> Tuple[npt.NDArray[np.int64], Array, float, float]:
    """(peak radii, their intensities, distance in mm, score) from one radial profile."""
    peaks = find_peaks(profile)
    if peaks.size == 0:
        return peaks, np.zeros(0), distance_guess, 0.0
    two_theta = np.arctan(np.arange(profile.size) * pixel_size / distance_guess)
    q_profile = 2.0 * np.sin(two_theta / 2.0) / wavelength
    rings, score = score_ring_spacing(q_profile[peaks])
    first_ring = 2 * distance_guess * np.arcsin(rings[0] * wavelength / 2.0) / pixel_size
    distance = first_ring * pixel_size / np.tan(2.0 * np.arcsin(wavelength * (AGBH_Q0 / (2 * np.pi)) / 2.0))
    return peaks, profile[peaks], float(distance), score


def refine_center(powder: Array, radii: Array, center: Tuple[float, float]) -> Tuple[float, float]:
    """Move the centre (and radii) so the rings sample the brightest pixels (least squares)."""
    from scipy.ndimage import map_coordinates
    from scipy.optimize import least_squares

    norm = (powder - np.mean(powder)) / (np.std(powder) or 1.0)
    theta = np.linspace(0.0, 2 * np.pi, 200)
    peak = float(np.max(norm))

    def residual(p: Array) -> Array:
        cx, cy, rs = p[0], p[1], p[2:, np.newaxis]
        coords = np.stack([(rs * np.sin(theta) + cy).ravel(), (rs * np.cos(theta) + cx).ravel()])
        return np.asarray(map_coordinates(norm, coords, order=1)) - peak

    start = np.concatenate([[center[0], center[1]], np.asarray(radii, dtype=np.float64)])
    fit = least_squares(residual, start, method="lm")
    return float(fit.x[0]), float(fit.x[1])


def optimize_from(
    powder: Array,
    mask: Optional[Array],
    center: Tuple[float, float],
    distance_guess: float,
    wavelength: float,
    pixel_size: float,
    n_peaks: int,
    n_iterations: int,
) -> List[Candidate]:
    """Upstream's ``_opt_geom`` from one starting centre: every iteration's (score, distance, centre)."""
    profile = radial_profile(powder, mask, center)
    peaks, heights, distance, score = distance_from_profile(profile, distance_guess, wavelength, pixel_size)
    found = [Candidate(score, distance, center)]
    for _ in range(n_iterations):
        if peaks.size == 0:
            break
        chosen = peaks[:8][np.argsort(heights[:8])[::-1][:n_peaks]]  # the brightest of the first 8 rings
        center = refine_center(powder, chosen.astype(np.float64), center)
        profile = radial_profile(powder, mask, center)
        # Upstream fits the ring spacing with the previous iteration's distance; from a poor first
        # centre that distance can be far off, and the spacing search then locks onto a harmonic
        # (half or twice the true spacing) for good. The starting guess keeps the right harmonic;
        # the distance itself still comes from the rings of this iteration's centre.
        peaks, heights, distance, score = distance_from_profile(profile, distance_guess, wavelength, pixel_size)
        found.append(Candidate(score, distance, center, refined=True))
    return found


def best_of(candidates: Sequence[Candidate]) -> Candidate:
    """The best-scoring candidate, among refined centres when there are any.

    Upstream also lets an unrefined starting centre win; its profile, in whole-pixel rings, often
    scores as well as the refined centre nearby, which is then lost (up to half a grid step).
    """
    refined = [c for c in candidates if c.refined]
    return max(refined or list(candidates), key=lambda c: c.score)


def edge_resolution(shape: Tuple[int, int], pixel_size: float, distance: float, wavelength: float) -> float:
    """Resolution (Angstrom) at the detector's edge, as upstream reports it."""
    two_theta = np.arctan((shape[0] / 2) * pixel_size / distance)
    return float(1.0 / (2.0 * np.sin(two_theta / 2.0) / wavelength))
