"""Quality, measured: how close a learned model is to its exact oracle or to held-out data.

* :func:`denoiser_error`: ``E ||D(x_t, t) - D*(x_t, t)||^2`` at each ``t`` of a grid, with
  ``x_t = alpha x0 + sigma eps`` and ``D*`` the exact denoiser (or ``x0`` itself: the denoising
  loss, whose minimum over ``D`` is the MMSE reached by ``D*``). The two are tied by the
  bias-variance identity ``E||D - x0||^2 = E||D - D*||^2 + E||D* - x0||^2`` (``D*`` is the
  conditional mean), which the tests check.
* :func:`w2_empirical`: the exact Wasserstein-2 distance between two equal-size point clouds.
  Between uniform empirical measures of the same size an optimal plan is a permutation
  (Birkhoff-von Neumann: the extreme points of the doubly-stochastic matrices are permutations),
  so the optimal-transport problem is an assignment problem, solved exactly by
  ``scipy.optimize.linear_sum_assignment`` (Crouse 2016).
* :func:`classifier_accuracy`, :func:`frechet_distance`, :func:`digits_fid` and
  :func:`nearest_neighbour_distance` for image samples: accuracy of a classifier on
  class-conditional samples, the Frechet distance between Gaussian fits of the classifier's
  penultimate features (the FID of Heusel et al. 2017 with a small in-domain classifier in place
  of Inception), and each sample's distance to its nearest training image (copying shows up as 0).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from . import _checks
from .paths import as_time, check_time, expand, get

__all__ = ["denoiser_error", "w2_empirical", "classifier_accuracy", "frechet_distance", "digits_fid",
           "nearest_neighbour_distance", "MAX_OT_POINTS"]

#: the largest cloud :func:`w2_empirical` accepts (the cost matrix has ``n^2`` float64 entries)
MAX_OT_POINTS = 6000
#: the largest batch of :func:`nearest_neighbour_distance` (a ``batch x n_train`` distance matrix)
MAX_BATCH = 1 << 20


def _points(x0, n: Optional[int], generator, name: str = "x0") -> Tensor:
    if isinstance(x0, Tensor):
        if not x0.is_floating_point() or x0.ndim < 2:
            raise ValueError(f"{name} must be a floating-point tensor [n, ...]; got {x0.dtype} {tuple(x0.shape)}")
        return x0
    if callable(getattr(x0, "sample", None)):
        if n is None:
            raise ValueError("n (the number of points to draw) is needed when x0 is a law")
        return x0.sample(n, generator=generator)
    raise TypeError(f"{name} must be a tensor or a law with .sample(n, generator=...); got {type(x0).__name__}")


@torch.no_grad()
def denoiser_error(denoiser: Callable, reference: Optional[Callable], path, ts, x0, n: Optional[int] = None,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """``E_{x0, eps} ||D(x_t, t) - R(x_t, t)||^2`` (summed over coordinates, averaged over points)
    at each ``t`` of ``ts``; returns a tensor like ``ts``.

    ``reference`` is a denoiser ``R`` (e.g. the exact ``mixture.denoiser(path)``) or ``None`` for
    ``R = x0`` (the plain denoising loss). ``x0`` is a tensor ``[n, ...]`` of data or a law with
    ``.sample`` (then ``n`` points are drawn from ``generator``); one fresh ``eps`` per ``t``, in
    ``x0``'s dtype (use float64 for exact checks).
    """
    path = get(path)
    ts = torch.as_tensor(ts, dtype=torch.float64).reshape(-1)
    check_time(ts, "ts")
    x0 = _points(x0, n, generator)
    out = torch.empty(len(ts), dtype=torch.float64)
    for i, t in enumerate(ts):
        tt = as_time(t, like=x0)
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        x = expand(path.alpha(tt), x0) * x0 + expand(path.sigma(tt), x0) * eps
        target = x0 if reference is None else reference(x, tt)
        out[i] = (denoiser(x, tt) - target).reshape(x0.shape[0], -1).pow(2).sum(1).mean().double()
    return out


def w2_empirical(x: Tensor, y: Tensor) -> float:
    """Exact Wasserstein-2 distance between the uniform empirical measures of ``x [n, d]`` and
    ``y [n, d]`` (the same ``n``, at most :data:`MAX_OT_POINTS`):
    ``W2^2 = min over permutations pi of (1/n) sum_i ||x_i - y_pi(i)||^2``, solved as an
    assignment problem. Rows of higher-rank inputs are flattened."""
    from scipy.optimize import linear_sum_assignment

    x, y = _points(x, None, None, "x"), _points(y, None, None, "y")
    x, y = x.reshape(x.shape[0], -1).double().cpu(), y.reshape(y.shape[0], -1).double().cpu()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape (equal-size clouds); got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] > MAX_OT_POINTS:
        raise ValueError(f"x has {x.shape[0]} points; w2_empirical solves an n x n assignment, n <= {MAX_OT_POINTS}")
    if not (bool(torch.isfinite(x).all()) and bool(torch.isfinite(y).all())):
        raise ValueError("x and y must be finite")
    cost = (x.pow(2).sum(1)[:, None] + y.pow(2).sum(1)[None, :] - 2 * x @ y.T).clamp_min(0)
    rows, cols = linear_sum_assignment(cost.numpy())
    exact = (x[torch.as_tensor(rows)] - y[torch.as_tensor(cols)]).pow(2).sum(1).mean()  # no cancellation
    return float(exact.sqrt())


@torch.no_grad()
def _batched(fn: Callable, x: Tensor, batch_size: int = 512) -> Tensor:
    return torch.cat([fn(x[i: i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def _net_input(classifier, images: Tensor) -> Tensor:
    p = next(classifier.parameters())
    return images.to(device=p.device, dtype=p.dtype)


@torch.no_grad()
def classifier_accuracy(classifier: torch.nn.Module, images: Tensor, labels: Tensor) -> float:
    """The share of ``images`` whose argmax class under ``classifier`` equals ``labels``."""
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape [{images.shape[0]}]; got {tuple(labels.shape)}")
    classifier.eval()
    pred = _batched(lambda b: classifier(b).argmax(1), _net_input(classifier, images))
    return float((pred.cpu() == labels.cpu()).double().mean())


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """``||m_a - m_b||^2 + tr(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2)``: the squared W2 distance
    between the Gaussian fits (sample mean, unbiased covariance) of two feature sets ``[n, k]``
    (Frechet 1957; Dowson & Landau 1982; the FID of Heusel et al. 2017). Computed in float64 with
    symmetric square roots of positive semi-definite matrices, so rank-deficient covariances
    (fewer points than features, dead units) are fine."""
    a = _checks.tensor("a", a, floating=True).detach().double().cpu()
    b = _checks.tensor("b", b, floating=True).detach().double().cpu()
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must be [n, k] feature sets with the same k; got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("a and b need at least 2 rows each (a covariance is fitted)")
    ma, mb = a.mean(0), b.mean(0)
    ca, cb = torch.cov(a.T).reshape(a.shape[1], a.shape[1]), torch.cov(b.T).reshape(b.shape[1], b.shape[1])
    sa = _sqrt_psd(ca)
    middle = sa @ cb @ sa
    cross = _psd_eigvals(0.5 * (middle + middle.T)).sqrt().sum()
    return float(((ma - mb) ** 2).sum() + torch.trace(ca) + torch.trace(cb) - 2 * cross)


def _psd_eigvals(c: Tensor, vectors: bool = False):
    """Eigenvalues of a symmetric PSD matrix with those below its numerical rank set to 0: an
    eigenvalue at the level of rounding (``k * eps * max``) is a zero one, and its square root
    (``~ sqrt(eps)``) would otherwise leak into the Frechet distance."""
    evals, evecs = torch.linalg.eigh(c)
    tol = c.shape[0] * torch.finfo(c.dtype).eps * evals.abs().max().clamp_min(torch.finfo(c.dtype).tiny)
    evals = torch.where(evals > tol, evals, torch.zeros_like(evals))
    return (evals, evecs) if vectors else evals


def _sqrt_psd(c: Tensor) -> Tensor:
    evals, evecs = _psd_eigvals(0.5 * (c + c.T), vectors=True)
    return (evecs * evals.sqrt()) @ evecs.T


@torch.no_grad()
def digits_fid(classifier: torch.nn.Module, images: Tensor, reference: Tensor) -> float:
    """:func:`frechet_distance` between ``classifier.features`` of ``images`` and of ``reference``
    (e.g. the test split of :func:`diffkit.data.digits`)."""
    classifier.eval()
    fa = _batched(classifier.features, _net_input(classifier, images))
    fb = _batched(classifier.features, _net_input(classifier, reference))
    return frechet_distance(fa, fb)


@torch.no_grad()
def nearest_neighbour_distance(samples: Tensor, train: Tensor, batch_size: int = 1024) -> Tensor:
    """For each sample, the Euclidean distance to its nearest row of ``train`` (rows flattened);
    returns ``[n]``. A model that copies its training set scores 0."""
    samples = _checks.tensor("samples", samples, floating=True, min_dim=1)
    train = _checks.tensor("train", train, floating=True, min_dim=1)
    batch_size = _checks.integer("batch_size", batch_size, 1, MAX_BATCH)
    s = samples.reshape(samples.shape[0], -1).double().cpu()
    r = train.reshape(train.shape[0], -1).double().cpu()
    if s.shape[1] != r.shape[1]:
        raise ValueError(f"samples and train must have rows of the same size; got {s.shape[1]} and {r.shape[1]}")
    return _batched(lambda b: torch.cdist(b, r, compute_mode="donot_use_mm_for_euclid_dist").min(1).values, s, batch_size)
