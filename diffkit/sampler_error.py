"""How far a sampler's output is from the data: exact W2 for Gaussian data, an optimal-transport
estimate from samples for anything else, and the convergence order read off such errors.

Exact, for Gaussian data ``N(m, S)``: with its exact (affine) denoiser every solver with a fixed
grid is an affine map of its start and noise, so its output law is a Gaussian
(:func:`diffkit.samplers.sampler_moments`) and its Wasserstein-2 distance to the data is closed
form (:func:`diffkit.analytic.w2_gaussian`; Givens & Shortt 1984). :func:`exact_w2`,
:func:`w2_vs_nfe`.

From samples, for any 2D data (a Gaussian mixture's run is not affine): the W2 distance between
two clouds of ``n`` points each is an assignment problem, solved exactly by
``scipy.optimize.linear_sum_assignment`` (Kuhn 1955; Peyre & Cuturi 2019, "Computational Optimal
Transport", Sec. 2.2: between uniform measures on ``n`` points an optimal plan is a permutation).
A run's estimate compares its ``n`` outputs with ``n`` *fresh* draws of the data. It is biased
upwards: even a perfect sampler (an exact draw of the data) scores the W2 between two independent
``n``-samples of the data, the **noise floor** (:func:`empirical_w2_floor`), which in 2D shrinks
only like ``n^{-1/2}`` up to a log factor (Fournier & Guillin 2015). A sampler is resolved by the
estimate only where its error stands above that floor. :func:`empirical_w2`, :func:`sample_w2`,
:func:`sample_w2_vs_nfe`.

Orders: a method of order ``p`` has ``W2 ~ C NFE^-p`` once the steps are small enough;
:func:`fitted_order` is minus the least-squares slope of ``log W2`` against ``log NFE`` over the
points given, :func:`asymptotic_order` over the last ``k`` points of a curve only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from . import analytic as _analytic
from . import paths as _paths

__all__ = [
    "matched_gaussian",
    "exact_w2",
    "solver_nfe",
    "w2_vs_nfe",
    "fitted_order",
    "asymptotic_order",
    "empirical_w2",
    "empirical_w2_floor",
    "sample_w2",
    "sample_w2_vs_nfe",
    "FRESH_SEED_OFFSET",
]

#: the fresh data of a run seeded ``seed`` are drawn with seed ``seed + FRESH_SEED_OFFSET``, a
#: stream no run of a demo (seeds below 10^6) uses for its own start
FRESH_SEED_OFFSET = 1_000_003


def matched_gaussian(dist) -> _analytic.Gaussian:
    """The Gaussian with the same mean and covariance as ``dist`` (a Gaussian, returned as is, or
    a Gaussian mixture: ``m = sum_k w_k m_k``, ``S = sum_k w_k (C_k + m_k m_k^T) - m m^T``, the
    law of total covariance)."""
    if isinstance(dist, _analytic.Gaussian):
        return dist
    if not hasattr(dist, "moment_matched"):
        raise TypeError(f"dist must be an analytic.Gaussian or GaussianMixture; got {type(dist)}")
    return dist.moment_matched()


def exact_w2(solver: str, path, data: _analytic.Gaussian, steps: int = 10, grid="logsnr",
             **options) -> float:
    """Exact W2 between ``solver``'s output law and the Gaussian ``data``, both exact: the run
    starts from the exact marginal at the grid's first time and uses ``data``'s exact denoiser
    (:func:`diffkit.samplers.sampler_moments`), so this is the pure discretisation error. A
    degenerate output law (a point mass, say) is measured too: W2 needs only ``data``'s
    covariance to be positive definite."""
    from .samplers import sampler_moments

    if not isinstance(data, _analytic.Gaussian):
        raise TypeError("data must be an analytic.Gaussian (for a mixture use sample_w2, or "
                        f"matched_gaussian for the Gaussian with its moments); got {type(data)}")
    return float(_analytic.w2_gaussian(data, sampler_moments(solver, path, data, steps=steps,
                                                              grid=grid, **options)))


def _identity(x, t):
    return x


def solver_nfe(solver: str, path, grid="logsnr", steps: int = 10, **grid_options) -> int:
    """The number of denoiser calls of ``solver`` on ``grid`` (a name, with ``steps`` and
    ``grid_options`` for :func:`diffkit.paths.grid`, or a tensor of times). A fixed-grid solver's
    count does not depend on the denoiser, so it is counted on a free one: ``steps`` for the
    one-call solvers, ``2 steps - 1`` for heun (its last step is one call), ``2 steps`` for pc,
    ``4 steps - 3`` for rk4 (one call on its last step). Refused for ``adaptive``, whose count
    depends on the state."""
    from .samplers import info, sample

    if not info(solver).affine:
        raise ValueError(f"solver {solver!r} picks its steps from the state: its NFE has no "
                         "fixed value")
    path = _paths.get(path)
    ts = grid if isinstance(grid, torch.Tensor) else _paths.grid(grid, int(steps), path,
                                                                   **grid_options)
    one = torch.zeros(1, 1, dtype=torch.float64)
    return sample(_identity, path, one, solver=solver, grid=ts,
                  generator=torch.Generator().manual_seed(0)).nfe


def w2_vs_nfe(solver: str, path, data: _analytic.Gaussian, steps: Sequence[int],
              grid="logsnr", **grid_options) -> tuple[list[int], list[float]]:
    """``(nfe, w2)`` of ``solver`` at each step count of ``steps``: the number of denoiser calls
    of a run (:func:`solver_nfe`) and its exact W2 to ``data`` (:func:`exact_w2`). ``grid`` is a
    grid name; ``grid_options`` go to :func:`diffkit.paths.grid` (e.g. ``logsnr_max``)."""
    path = _paths.get(path)
    nfes, w2s = [], []
    for n in steps:
        ts = _paths.grid(grid, int(n), path, **grid_options)
        nfes.append(solver_nfe(solver, path, ts))
        w2s.append(exact_w2(solver, path, data, grid=ts))
    return nfes, w2s


def fitted_order(nfe: Sequence[float], w2: Sequence[float]) -> float:
    """The empirical convergence order ``p`` in ``W2 ~ C NFE^-p``: minus the least-squares slope
    of ``log W2`` against ``log NFE`` (two points: ``log(W2_1/W2_2) / log(NFE_2/NFE_1)``)."""
    x, y = np.log(np.asarray(nfe, dtype=float)), np.log(np.asarray(w2, dtype=float))
    if x.size < 2:
        raise ValueError("fitted_order needs at least two points")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("fitted_order needs positive, finite nfe and w2")
    return float(-np.polyfit(x, y, 1)[0])


def asymptotic_order(nfe: Sequence[float], w2: Sequence[float], last: int = 3) -> float:
    """:func:`fitted_order` over the ``last`` points of a curve with positive W2 (the largest
    NFE, where the error expansion holds): the order a legend can quote for a whole curve."""
    nfe, w2 = np.asarray(nfe, dtype=float), np.asarray(w2, dtype=float)
    ok = np.isfinite(w2) & (w2 > 0)
    if int(last) < 2:
        raise ValueError(f"last must be >= 2; got {last}")
    return fitted_order(nfe[ok][-int(last):], w2[ok][-int(last):])


def empirical_w2(x, y) -> float:
    """The W2 distance between the uniform measures on the rows of ``x [n, d]`` and ``y [n, d]``:
    ``sqrt(min over permutations pi of mean_i |x_i - y_pi(i)|^2)``, solved exactly as an
    assignment problem (``scipy.optimize.linear_sum_assignment``)."""
    from scipy.optimize import linear_sum_assignment

    a = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    b = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] == 0:
        raise ValueError(f"x and y must be [n, d] arrays of one shape, n >= 1; got {a.shape} "
                         f"and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("x and y must be finite")
    cost = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    return math.sqrt(float(cost[rows, cols].mean()))


def empirical_w2_floor(data, n: int, reps: int = 8, seed: int = 0) -> tuple[float, float]:
    """The noise floor of :func:`empirical_w2` with ``n`` points: ``(mean, std)`` over ``reps``
    pairs of independent ``n``-samples of ``data`` (what an exact sampler would score)."""
    n, reps = int(n), int(reps)
    if n < 1 or reps < 1:
        raise ValueError(f"n and reps must be >= 1; got n={n}, reps={reps}")
    gen = torch.Generator().manual_seed(int(seed) + FRESH_SEED_OFFSET)
    vals = [empirical_w2(data.sample(n, generator=gen), data.sample(n, generator=gen))
            for _ in range(reps)]
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if reps > 1 else 0.0


def sample_w2(samples: torch.Tensor, data, seed: int = 0) -> float:
    """:func:`empirical_w2` between ``samples [n, d]`` and ``n`` fresh draws of ``data``
    (seed ``seed + FRESH_SEED_OFFSET``, independent of a run seeded ``seed``)."""
    gen = torch.Generator().manual_seed(int(seed) + FRESH_SEED_OFFSET)
    fresh = data.sample(samples.shape[0], generator=gen).to(samples.dtype)
    return empirical_w2(samples, fresh)


def sample_w2_vs_nfe(solver: str, path, data, steps: Sequence[int], grid="logsnr",
                     n: int = 512, seed: int = 0, **options) -> tuple[list[int], list[float]]:
    """``(nfe, w2)``: for each step count of ``steps``, ``solver`` run on ``grid`` with ``data``'s
    exact denoiser from ``n`` draws of the exact marginal at the grid's first time (seed
    ``seed``), and the :func:`sample_w2` of its output. Every step count uses the same seeds, so
    the curve's differences are the solver's, not the draw's."""
    from .samplers import sample

    path = _paths.get(path)
    nfes, w2s = [], []
    denoiser = data.denoiser(path)
    for k in steps:
        ts = _paths.grid(grid, int(k), path)
        gen = torch.Generator().manual_seed(int(seed))
        x0 = data.marginal(float(ts[0]), path).sample(int(n), generator=gen)
        res = sample(denoiser, path, x0, solver=solver, grid=ts, generator=gen, **options)
        nfes.append(res.nfe)
        w2s.append(sample_w2(res.x, data, seed))
    return nfes, w2s
