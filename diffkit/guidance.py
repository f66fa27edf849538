"""Guidance as denoiser combinators: each function returns a denoiser ``D(x, t)`` any sampler takes.

* Classifier-free guidance (Ho & Salimans 2022): ``D_s = D_u + s (D_c - D_u)``. Scale ``s = 1`` is
  the conditional denoiser and ``s = 0`` the unconditional one (the convention of ``diffusers``'
  ``guidance_scale``); ``s > 1`` extrapolates. Because every prediction is affine in ``x0`` with
  the same coefficients at a given ``(x, t)`` (:mod:`diffkit.views`), mixing denoisers is the same
  as mixing noise predictions, scores or velocities with the same weights.
* Classifier guidance (Dhariwal & Nichol 2021, Sec. 4): the score ``grad log p_t(x)`` plus
  ``s grad_x log p_t(c | x)``; on the denoiser this adds ``s sigma^2 / alpha grad log p_t(c | x)``
  (Tweedie's formula, written once in :func:`add_score`).
* Guidance in a limited interval (Kynkaanniemi et al. 2024): CFG only for ``t`` in
  ``[t_lo, t_hi]``, the conditional denoiser elsewhere (their guidance weight 1 outside the interval).

Both guidances follow the score of the *tilted marginal* ``p_t(x | c)^s p_t(x)^(1 - s)`` at each
``t``: with the exact class posterior, classifier guidance at scale ``s`` is CFG at scale ``s``.
The law they sample is nevertheless not the tilted *data* law ``p(x | c)^s p(x)^(1 - s)`` (tilting
does not commute with the noising; Chidambaram et al. 2024, Bradley & Nakkiran 2024).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from . import _checks
from .paths import as_time, get
from .views import from_x0, to_x0

__all__ = ["cfg", "classifier", "interval", "add_score", "tilted_gap", "grid_2d", "normalise", "law_gap",
           "hdr_mask", "precision_coverage", "knn_precision_coverage"]


#: the largest grid side of :func:`tilted_gap` (``n * n`` probability-flow solves)
MAX_GRID = 1024


def _check_scale(scale) -> float:
    return _checks.real("scale", scale)


def _check_callable(f, name: str) -> None:
    if not callable(f):
        raise TypeError(f"{name} must be a callable D(x, t); got {type(f).__name__}")


def cfg(conditional: Callable, unconditional: Callable, scale: float) -> Callable:
    """Classifier-free guidance ``D_u + scale (D_c - D_u)`` (Ho & Salimans 2022, eq. 6, written on
    the denoiser). ``scale = 1``: ``conditional``; ``scale = 0``: ``unconditional``."""
    _check_callable(conditional, "conditional")
    _check_callable(unconditional, "unconditional")
    scale = _check_scale(scale)

    def guided(x: torch.Tensor, t) -> torch.Tensor:
        d_u = unconditional(x, t)
        return d_u + scale * (conditional(x, t) - d_u)

    guided.scale = scale  # type: ignore[attr-defined]
    return guided


def add_score(denoiser: Callable, score: Callable, scale: float, path) -> Callable:
    """The denoiser whose score is ``denoiser``'s plus ``scale * score(x, t)``: through Tweedie's
    formula ``x0 = (x + sigma^2 grad log p_t) / alpha`` (:func:`diffkit.views.to_x0`)."""
    _check_callable(denoiser, "denoiser")
    _check_callable(score, "score")
    scale, path = _check_scale(scale), get(path)

    def guided(x: torch.Tensor, t) -> torch.Tensor:
        base = from_x0("score", denoiser(x, t), x, t, path)
        return to_x0("score", base + scale * score(x, t), x, t, path)

    return guided


def _grad(log_prob: Callable, x: torch.Tensor, t) -> torch.Tensor:
    """``grad_x sum(log_prob(x, t))`` (rows independent), also inside a ``no_grad`` sampler run."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        out = log_prob(xg, t)
        if out.shape != x.shape[:1]:
            raise ValueError(f"log_prob_class must return one value per row [{x.shape[0]}]; "
                             f"got {tuple(out.shape)}")
        (g,) = torch.autograd.grad(out.sum(), xg)
    return g


def classifier(denoiser: Callable, log_prob_class: Callable, scale: float, path) -> Callable:
    """Classifier guidance: the score of ``denoiser`` plus ``scale * grad_x log p_t(c | x)``
    (Dhariwal & Nichol 2021, Alg. 1 and Sec. 4.1, in the score form of Song et al. 2021, eq. 48).

    ``log_prob_class(x, t) -> [n]``: the log-probability of the wanted class under a (noise-aware)
    classifier, differentiable in ``x`` (e.g. a column of
    :meth:`diffkit.analytic.GaussianMixture.class_log_posterior`). With the exact class posterior
    and the unconditional exact denoiser this equals :func:`cfg` at the same scale."""
    _check_callable(log_prob_class, "log_prob_class")
    return add_score(denoiser, lambda x, t: _grad(log_prob_class, x, t), scale, path)


def interval(conditional: Callable, unconditional: Callable, scale: float, t_lo: float,
             t_hi: float) -> Callable:
    """CFG at ``scale`` for ``t_lo <= t <= t_hi`` and the conditional denoiser elsewhere
    (Kynkaanniemi et al. 2024, eq. 3: guidance applied in a limited interval of noise levels;
    written in ``t``, which is monotone in their ``sigma``). ``t`` may be a scalar or ``[n]``."""
    t_lo = _checks.real("t_lo", t_lo, 0.0, 1.0)
    t_hi = _checks.real("t_hi", t_hi, 0.0, 1.0)
    if not t_lo <= t_hi:
        raise ValueError(f"need 0 <= t_lo <= t_hi <= 1; got t_lo={t_lo}, t_hi={t_hi}")
    guided = cfg(conditional, unconditional, scale)

    def limited(x: torch.Tensor, t) -> torch.Tensor:
        tt = as_time(t, like=x)
        inside = (tt >= t_lo) & (tt <= t_hi)
        if tt.dim() == 0:
            return guided(x, t) if bool(inside) else conditional(x, t)
        return torch.where(inside[:, None], guided(x, t), conditional(x, t))

    return limited


# -- the law CFG samples against the tilted data law, on a 2D grid ----------------------------


def grid_2d(box, n: int, dtype=torch.float64) -> tuple[torch.Tensor, float]:
    """Cell centres ``[n * n, 2]`` of a regular grid on ``box = (x_lo, x_hi, y_lo, y_hi)`` (row
    major: ``y`` varies slowest) and the cell area: the quadrature of :func:`tilted_gap`."""
    n = _checks.integer("n", n, 2, MAX_GRID)
    if isinstance(box, (str, bytes)) or not hasattr(box, "__len__") or len(box) != 4:
        raise TypeError(f"box must be four numbers (x_lo, x_hi, y_lo, y_hi); got {box!r}")
    x_lo, x_hi, y_lo, y_hi = (_checks.real("box", v) for v in box)
    if not (x_lo < x_hi and y_lo < y_hi):
        raise ValueError(f"box must be (x_lo, x_hi, y_lo, y_hi) with lo < hi; got {box}")
    hx, hy = (x_hi - x_lo) / n, (y_hi - y_lo) / n
    xs = x_lo + hx * (torch.arange(n, dtype=dtype) + 0.5)
    ys = y_lo + hy * (torch.arange(n, dtype=dtype) + 0.5)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1), hx * hy


def normalise(log_density: torch.Tensor, cell: float) -> torch.Tensor:
    """Cell masses ``p_i`` (summing to one) of a log-density sampled at the cell centres."""
    return torch.softmax(log_density + math.log(cell), dim=0)


def law_gap(p: torch.Tensor, q: torch.Tensor) -> dict[str, float]:
    """Total variation ``1/2 sum |p - q|`` and ``KL(p || q) = sum p log(p / q)`` between two
    discretised laws (cell masses)."""
    tiny = torch.finfo(p.dtype).tiny
    kl = (p * (torch.log(p.clamp_min(tiny)) - torch.log(q.clamp_min(tiny)))).sum()
    return dict(tv=float(0.5 * (p - q).abs().sum()), kl=float(kl))


def hdr_mask(p: torch.Tensor, level: float) -> torch.Tensor:
    """The highest-density region of the cell masses ``p`` holding mass ``level``: the fewest
    cells, most probable first, whose mass reaches ``level``."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level}")
    order = torch.argsort(p, descending=True)
    cum = torch.cumsum(p[order], 0)
    keep = torch.zeros_like(p, dtype=torch.bool)
    keep[order[: int((cum < level).sum()) + 1]] = True
    return keep


def precision_coverage(model: torch.Tensor, target: torch.Tensor, level: float = 0.95) -> dict[str, float]:
    """Exact precision and coverage of a model law against a target law (cell masses):
    precision = the model's mass inside the target's ``level`` highest-density region (how much of
    what is sampled is typical of the target), coverage = the target's mass inside the model's
    ``level`` region (how much of the target is reached). Both equal ``level`` when the laws are
    equal; guidance trades coverage for precision (the density-based reading of Kynkaanniemi et
    al. 2019's precision and recall)."""
    return dict(precision=float(model[hdr_mask(target, level)].sum()),
                coverage=float(target[hdr_mask(model, level)].sum()))


def tilted_gap(mixture, c, scale: float, path, box, n: int = 64, level: float = 0.95,
               rtol: float = 1e-6, atol: float = 1e-6) -> dict:
    """How far the law sampled by CFG at ``scale`` (exact denoisers of a labelled 2D
    :class:`~diffkit.analytic.GaussianMixture`, exact PF-ODE from the path's prior) is from the
    tilted data law ``p(x | c)^s p(x)^(1 - s)``, by quadrature on an ``n x n`` grid over ``box``.

    The sampled law's density is :func:`diffkit.likelihood.log_prob` of the guided denoiser (the
    instantaneous change of variables, exact trace); both laws are normalised on the grid. Returns
    ``tv`` and ``kl`` (``KL(sampled || tilted)``), the sampled law's mass inside the box
    (``mass_in_box``, a check on the box), the precision and coverage of the sampled law against
    the class's own law ``p(x | c)`` (:func:`precision_coverage`), and the grid's ``points``, ``cell``
    and cell masses ``sampled``, ``tilted`` for pictures.
    """
    from .analytic import GaussianMixture
    from .likelihood import log_prob

    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture must be a labelled analytic.GaussianMixture; got {type(mixture).__name__}")
    scale = _checks.real("scale", scale, 0.0)
    level = _checks.real("level", level, 0.0, 1.0, low_open=True, high_open=True)
    if mixture.dim != 2:
        raise ValueError(f"mixture must be 2-dimensional for the grid quadrature; got dim {mixture.dim}")
    points, cell = grid_2d(box, n, mixture.means.dtype)
    guided = cfg(mixture.conditional(c).denoiser(path), mixture.denoiser(path), scale)
    log_sampled = log_prob(guided, path, points, rtol=rtol, atol=atol)
    sampled = normalise(log_sampled, cell)
    tilted = normalise(mixture.tilted_log_prob(points, c, scale), cell)
    own = normalise(mixture.conditional(c).log_prob(points), cell)
    out = dict(law_gap(sampled, tilted), **precision_coverage(sampled, own, level))
    out.update(mass_in_box=float(torch.logsumexp(log_sampled, 0).exp() * cell), points=points,
               cell=cell, sampled=sampled, tilted=tilted)
    return out


def knn_precision_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, float]:
    """Sample-based precision and coverage: precision (Kynkaanniemi et al. 2019, eq. 1) is the
    fraction of ``fake`` points inside some ``real`` point's ball of radius its ``k``-th nearest
    real neighbour; coverage (Naeem et al. 2020, eq. 4) the fraction of ``real`` points whose ball
    holds at least one ``fake`` point. Both are 1 when ``fake`` is ``real``; guidance trades
    coverage for precision. ``real [n, d]``, ``fake [m, d]``."""
    real = _checks.tensor("real", real, floating=True, dim=2)
    fake = _checks.tensor("fake", fake, floating=True, dim=2)
    if real.shape[1] != fake.shape[1]:
        raise ValueError("real and fake must be [n, d] and [m, d] point clouds of one dimension d")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < real.shape[0]:
        raise ValueError(f"k must be an int in 1..{real.shape[0] - 1}; got {k!r}")
    real, fake = real.double(), fake.double()
    radius = torch.cdist(real, real).kthvalue(k + 1, dim=1).values          # [n] (self at 0)
    inside = torch.cdist(fake, real) <= radius[None, :]                       # [m, n]
    return dict(precision=float(inside.any(1).double().mean()), coverage=float(inside.any(0).double().mean()))
