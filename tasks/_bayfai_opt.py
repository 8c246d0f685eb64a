"""BayFAI: pyFAI's ring extraction and refinement steered by Bayesian optimisation, one distance per MPI rank.

Owns the algorithm of the ``BayFAI`` Task (upstream LUTE's ``lute/tasks/_bayfai.py``): each rank
takes one distance (``center.dist`` plus (rank - size//2) distance steps), discretises the free
parameters (``poni1``, ``poni2``, ``rot1``..., minus ``fixed``) on the ``bounds``/``resolutions``
grid, scores a geometry by -log of the mean squared 2θ residual of the calibrant's control points
pyFAI extracts there, samples ``n_samples`` starting points (Gaussian around the centre with
``prior``), then picks ``n_iterations`` more with a Gaussian process and the upper confidence bound
(``beta``), refines the best with pyFAI's ``GeometryRefinement.refine3`` within ``step``
resolutions, and rank 0 keeps the best score plus ``lbda`` times the uncertainty penalty. Upstream
uses scikit-learn's GP; this is a small fixed-kernel GP in numpy (upstream's RBF length 0.3 on the
normalised grid, constant 1, white noise 1e-3). Runs in the psana2 image (pyFAI, numpy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

ORDER = ("dist", "poni1", "poni2", "rot1", "rot2", "rot3")


class GaussianProcess:
    """Zero-mean GP regression with a fixed RBF kernel on points scaled to [-1, 1]."""

    def __init__(self, length: float = 0.3, amplitude: float = 1.0, noise: float = 1e-3) -> None:
        self.length, self.amplitude, self.noise = length, amplitude, noise
        self.x = np.zeros((0, 0))
        self.alpha = np.zeros(0)
        self.chol = np.zeros((0, 0))

    def kernel(self, a: Any, b: Any) -> Any:
        """The RBF covariance between the rows of ``a`` and ``b``."""
        d2 = np.sum((a[:, np.newaxis, :] - b[np.newaxis, :, :]) ** 2, axis=-1)
        return self.amplitude * np.exp(-0.5 * d2 / self.length**2)

    def fit(self, x: Any, y: Any) -> None:
        """Condition on observations ``y`` at ``x``."""
        self.x = np.asarray(x, dtype=np.float64)
        k = self.kernel(self.x, self.x) + self.noise * np.eye(len(self.x))
        self.chol = np.linalg.cholesky(k)
        self.alpha = np.linalg.solve(self.chol.T, np.linalg.solve(self.chol, np.asarray(y, dtype=np.float64)))

    def predict(self, x: Any) -> Tuple[Any, Any]:
        """Posterior mean and standard deviation at ``x``."""
        k_star = self.kernel(np.asarray(x, dtype=np.float64), self.x)
        mean = k_star @ self.alpha
        v = np.linalg.solve(self.chol, k_star.T)
        var = np.maximum(self.amplitude - np.sum(v**2, axis=0), 1e-12)
        return mean, np.sqrt(var)


def ucb_next(gp: GaussianProcess, grid: Any, visited: Sequence[int], beta: float) -> int:
    """The unvisited grid point with the highest upper confidence bound."""
    mean, std = gp.predict(grid)
    ucb = mean + beta * std
    ucb[list(visited)] = -np.inf
    return int(np.argmax(ucb))


@dataclass
class RankResult:
    """One rank's best geometry after refinement."""

    distance: float
    params: List[float]
    score: float
    penalty: float
    sigma: List[float]
    history: List[float]


def search_grid(
    center: Dict[str, float], bounds: Dict[str, Tuple[float, float]], res: Dict[str, float], free: Sequence[str]
) -> Tuple[Any, Any, Any]:
    """(full 6-parameter grid rows, the free parameters scaled to [-1, 1], their (min, max))."""
    axes = []
    for p in free:
        low, high = sorted((center[p] + bounds[p][0], center[p] + bounds[p][1]))
        axes.append(np.arange(low, high + res[p] / 2, res[p]))
    mesh = np.stack([m.ravel() for m in np.meshgrid(*axes, indexing="ij")], axis=1)
    mins, maxs = mesh.min(axis=0), mesh.max(axis=0)
    scaled = 2 * (mesh - mins) / np.where(maxs > mins, maxs - mins, 1.0) - 1
    full = np.tile([center[p] for p in ORDER], (mesh.shape[0], 1))
    for i, p in enumerate(free):
        full[:, ORDER.index(p)] = mesh[:, i]
    return full, scaled, (mins, maxs)


class Scorer:
    """Control points of the calibrant on the powder for a geometry, and their residual."""

    def __init__(self, powder: Any, detector: Any, calibrant: Any, imin: float, max_rings: int, pts_per_deg: float):
        self.powder, self.detector, self.calibrant = powder, detector, calibrant
        self.imin, self.max_rings, self.pts_per_deg = imin, max_rings, pts_per_deg

    def control_points(self, sample: Sequence[float]) -> Any:
        """PyFAI's control points (row, col, ring) extracted around the rings of ``sample``."""
        from pyFAI.geometry import Geometry
        from pyFAI.goniometer import SingleGeometry

        geometry = Geometry(
            **dict(zip(ORDER, map(float, sample))), detector=self.detector, wavelength=self.calibrant.wavelength
        )
        single = SingleGeometry(
            "BayFAI", self.powder, calibrant=self.calibrant, detector=self.detector, geometry=geometry
        )
        single.extract_cp(max_rings=self.max_rings, pts_per_deg=self.pts_per_deg, Imin=self.imin)
        return single.geometry_refinement

    def score(self, sample: Sequence[float]) -> float:
        """-log(mean squared 2θ residual) of the control points; 0 when none were found."""
        refinement = self.control_points(sample)
        data = refinement.data
        if data is None or len(data) == 0:
            return 0.0
        residual = refinement.residu2(
            np.asarray(sample, dtype=np.float64), data[:, 0], data[:, 1], data[:, 2].astype(np.int32)
        )
        return float(-np.log(residual / len(data))) if residual > 0 else 0.0


def refine(
    scorer: Scorer, sample: Sequence[float], res: Dict[str, float], step: int, fixed: Sequence[str]
) -> Tuple[float, List[float], float, List[float]]:
    """PyFAI's least-squares refinement within ``step`` resolutions: (score, params, penalty, sigmas)."""
    from pyFAI.geometryRefinement import GeometryRefinement

    data = scorer.control_points(sample).data
    if data is None or len(data) == 0:
        return 0.0, list(sample), 0.0, [float("inf")] * 5
    values = dict(zip(ORDER, map(float, sample)))
    refinement = GeometryRefinement(
        data=data,
        calibrant=scorer.calibrant,
        detector=scorer.detector,
        wavelength=scorer.calibrant.wavelength,
        **values,
    )
    for name in ORDER[:5]:
        getattr(refinement, f"set_{name}_min")(values[name] - step * res[name])
        getattr(refinement, f"set_{name}_max")(values[name] + step * res[name])
    residual = refinement.refine3(fix=sorted({"rot3", "wavelength", *fixed}))
    params = [float(refinement.param[i]) for i in range(6)]
    penalty, sigma = uncertainty(refinement, params)
    return float(-np.log(residual)), params, penalty, sigma


def uncertainty(
    refinement: Any, params: Sequence[float], rel: float = 1e-3, absolute: float = 1e-4
) -> Tuple[float, List[float]]:
    """Penalty -log det(covariance) and sigmas from the residual's Hessian (upstream's estimate_uncertainty)."""
    p0 = np.asarray(params, dtype=np.float64)
    d1, d2 = refinement.data[:, 0], refinement.data[:, 1]
    ring = refinement.data[:, 2].astype(np.int32)

    def f(p: Any) -> float:
        return float(refinement.residu2(p, d1, d2, ring))

    f0, n = f(p0), 5
    delta = np.maximum(rel * np.abs(p0), absolute)
    hessian = np.zeros((n, n))
    for i in range(n):
        e_i = np.zeros(6)
        e_i[i] = delta[i]
        hessian[i, i] = (f(p0 + e_i) + f(p0 - e_i) - 2 * f0) / delta[i] ** 2
        for j in range(i + 1, n):
            e_j = np.zeros(6)
            e_j[j] = delta[j]
            hessian[i, j] = hessian[j, i] = (
                f(p0 + e_i + e_j) + f(p0 - e_i - e_j) - f(p0 + e_i - e_j) - f(p0 - e_i + e_j)
            ) / (4 * delta[i] * delta[j])
    if np.any(np.linalg.eigvalsh(hessian) <= 0):
        return 0.0, [float("inf")] * n
    cov = np.linalg.inv(hessian)
    dof = max(len(refinement.data) - n, 1)
    return float(-np.log(np.linalg.det(cov))), [float(s) for s in np.sqrt(f0 * np.diag(cov) / dof)]


def optimize_distance(
    scorer: Scorer,
    dist: float,
    center: Dict[str, float],
    bounds: Dict[str, Tuple[float, float]],
    res: Dict[str, float],
    fixed: Sequence[str],
    bo: Any,
) -> RankResult:
    """Bayesian optimisation at one distance, then refinement of its best sample."""
    rng = np.random.default_rng(bo.seed)
    center = {**center, "dist": dist}
    free = [p for p in ORDER if p not in fixed and p != "dist"]
    full, scaled, (mins, maxs) = search_grid(center, bounds, res, free)
    if bo.prior:
        cov = np.diag([(abs(bounds[p][1] - bounds[p][0]) / 5) ** 2 for p in free])
        picked = np.clip(rng.multivariate_normal([center[p] for p in free], cov, bo.n_samples), mins, maxs)
        index = [
            int(np.argmin(np.sum((scaled - (2 * (x - mins) / np.where(maxs > mins, maxs - mins, 1) - 1)) ** 2, axis=1)))
            for x in picked
        ]
    else:
        index = [int(i) for i in rng.choice(full.shape[0], bo.n_samples)]
    scores = [scorer.score(full[i]) for i in index]
    if not any(scores):
        return RankResult(dist, list(full[index[0]]), 0.0, 0.0, [float("inf")] * 5, scores)
    gp = GaussianProcess()
    for _ in range(bo.n_iterations):
        y = np.asarray(scores)
        gp.fit(scaled[index], (y - y.mean()) / (y.std() or 1.0))
        nxt = ucb_next(gp, scaled, index, bo.beta)
        index.append(nxt)
        scores.append(scorer.score(full[nxt]))
    best = full[index[int(np.argmax(scores))]]
    score, params, penalty, sigma = refine(scorer, best, res, bo.step, fixed)
    return RankResult(dist, params, score, penalty, sigma, scores)
