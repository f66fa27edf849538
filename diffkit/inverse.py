"""Inversion and linear inverse problems.

**Inversion** (:func:`invert`). The probability-flow ODE is deterministic, so it can be run from
data towards noise: DDIM inversion (Song et al. 2021, Sec. 4.3; used for editing by Mokady et al.
2023) is the DDIM step with the times reversed. Written in the half logSNR ``lam = log(alpha/sigma)``
with the denoiser ``D`` (the exponential integrator of Lu et al. 2022b, eq. 9), a step from
``t`` to ``s`` with ``h = lam_s - lam_t`` (negative when inverting) is

    ``x_s = (sigma_s / sigma_t) x_t - alpha_s expm1(-h) D_eff``,

with ``D_eff = D(x_t, t)`` for ``"ddim"`` (first order) and, for ``"dpm++2m"`` (second order,
DPM-Solver++(2M), Lu et al. 2022b, Alg. 2), ``D_eff = (1 + 1/(2r)) D_i - 1/(2r) D_{i-1}`` with
``r = h_{i-1} / h_i``. Both are the samplers' own updates, valid for either sign of ``h``. On
Gaussian data the exact flow map (:meth:`diffkit.analytic.Gaussian.flow_map`) is the reference.

**Linear inverse problems** ``y = A x0 + sigma_y n``. Three ways to sample ``p(x0 | y)`` with a
denoiser, each a run over the same grid:

* :func:`replacement` (RePaint, Lugmayr et al. 2022, Alg. 1, with its resampling): after each
  unconditional step the measured part is replaced by a forward-noised copy of ``y``,
  ``x <- x + A^T (alpha_s y + sigma_s A eps - A x)`` (for ``A`` with orthonormal rows: a mask,
  a projection); with ``jumps > 1`` each step is repeated after re-noising back to ``t``.
* :func:`dps` (diffusion posterior sampling, Chung et al. 2023, Alg. 1 and eq. 16): the denoiser
  plus the gradient of ``-|y - A D(x_t, t)|^2 / (2 sigma_y^2)`` times ``zeta`` (a fixed weight:
  Alg. 1's normalised step ``zeta / |y - A D|`` would make the run non-affine), through Tweedie
  (:func:`diffkit.guidance.add_score`).
* :func:`posterior` : guidance by an exact ``grad log p_t(y | x_t)``; for Gaussian data
  :meth:`diffkit.analytic.Gaussian.measurement_score` gives it, and the guided denoiser is then the
  exact denoiser of the true posterior, so the run reaches the solver's own floor.

With the exact Gaussian denoiser every run is affine in its start and its draws, so each method's
output law is read exactly (:func:`diffkit.analytic.run_moments`) and compared with the closed-form
posterior (:meth:`diffkit.analytic.Gaussian.posterior`) by W2.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .guidance import add_score
from .samplers._common import Noise, schedule
from .samplers.sample import make_grid, resolve_path

__all__ = ["invert", "INVERTERS", "replacement", "dps", "posterior", "mask_operator"]

INVERTERS = ("ddim", "dpm++2m")


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1; got {steps!r}")
    return steps


def inversion_grid(path, steps: int, grid="logsnr") -> torch.Tensor:
    """The increasing grid of an inversion: a sampling grid's positive times, reversed (from its
    smallest positive time up to where sampling starts)."""
    ts = make_grid(grid, steps, path)
    return ts[ts > 0].flip(0)


def invert(denoiser: Callable, path, x0: torch.Tensor, solver: str = "ddim", steps: int = 50,
           grid="logsnr") -> torch.Tensor:
    """Map ``x0`` (taken as the state at the grid's smallest positive time, where ``sigma / alpha``
    is ``exp(-LOGSNR_MAX / 2) = 0.002`` on the named grids) to noise at the grid's start by running
    the deterministic ``solver`` (``"ddim"`` or ``"dpm++2m"``) backwards; ``steps - 1`` denoiser calls
    (the sampling grid of ``steps`` steps without its final jump to ``t = 0``). Sampling the result
    with the same solver, grid and steps and stopping at that smallest time undoes it up to the
    discretisation error."""
    if solver not in INVERTERS:
        raise ValueError(f"solver must be one of {', '.join(INVERTERS)}; got {solver!r}")
    path = resolve_path(path)
    ts = inversion_grid(path, _check_steps(steps), grid)
    return _exponential_run(denoiser, path, x0, ts, order=1 if solver == "ddim" else 2)


def _exponential_run(denoiser, path, x, ts, order: int):
    """The ddim / dpm++2m update of the module docstring along ``ts`` (either direction)."""
    S = schedule(path, ts, x)
    prev = None
    for i in range(S.steps):
        d = denoiser(x, S.times[i])
        h = S.lam[i + 1] - S.lam[i]
        d_eff = d
        if order == 2 and prev is not None:
            r = (S.lam[i] - S.lam[i - 1]) / h
            d_eff = (1 + 0.5 / r) * d - (0.5 / r) * prev
        x = (S.sigma[i + 1] / S.sigma[i]) * x - S.alpha[i + 1] * math.expm1(-h) * d_eff
        prev = d
    return x


# -- linear inverse problems -------------------------------------------------------------------


def mask_operator(mask: torch.Tensor) -> torch.Tensor:
    """The measurement matrix ``A [p, d]`` that keeps the entries where the boolean ``mask [d]`` (or
    any shape, flattened) is true: rows of the identity, so ``A A^T = I``."""
    mask = torch.as_tensor(mask).reshape(-1).to(torch.bool)
    if not bool(mask.any()):
        raise ValueError("mask must keep at least one entry")
    return torch.eye(mask.numel(), dtype=torch.float64)[mask]


def _check_operator(A: torch.Tensor, y: torch.Tensor, dim: int, orthonormal: bool):
    if not isinstance(A, torch.Tensor) or A.dim() != 2 or A.shape[1] != dim:
        raise ValueError(f"A must be a [p, {dim}] tensor (d = the data's flattened size); got "
                         f"{tuple(A.shape) if isinstance(A, torch.Tensor) else type(A).__name__}")
    if not isinstance(y, torch.Tensor) or y.shape[-1] != A.shape[0]:
        raise ValueError(f"y must be a [p] or [n, p] tensor with p = {A.shape[0]} (A's rows)")
    if orthonormal:
        eye = torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
        if not torch.allclose(A @ A.T, eye, atol=1e-8):
            raise ValueError("replacement needs A with orthonormal rows (A A^T = I: a mask or a "
                             "projection); use dps or posterior for a general A")


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


def replacement(denoiser: Callable, path, x_start: torch.Tensor, A: torch.Tensor, y: torch.Tensor,
                steps: int = 50, grid="logsnr", eta: float = 1.0, jumps: int = 1,
                generator: torch.Generator | None = None, noise=None) -> torch.Tensor:
    """RePaint-style inpainting (Lugmayr et al. 2022, Alg. 1) for ``A`` with orthonormal rows.

    At each grid step ``t -> s``: an unconditional DDIM step with ``eta`` (``eta = 1``: DDPM, as in
    RePaint; :func:`diffkit.samplers.ddim.ddim_coefficients`), then the measured part is replaced by
    ``alpha_s y + sigma_s A eps`` (the forward process applied to ``y``). With ``jumps = J > 1`` the
    step is repeated ``J`` times, re-noising ``x_s`` back to ``t`` by ``q(x_t | x_s)`` in between
    (RePaint's resampling, jump length 1). The last step lands on ``D(x, t)`` with ``y`` put in
    exactly. ``steps * jumps`` denoiser calls. ``noise(k, x)`` replaces the draws (exact laws).
    """
    from .samplers.ddim import ddim_coefficients

    path = resolve_path(path)
    if isinstance(jumps, bool) or not isinstance(jumps, int) or jumps < 1:
        raise ValueError(f"jumps must be an int >= 1; got {jumps!r}")
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must lie in [0, 1]; got {eta}")
    shape = x_start.shape
    A, y = A.to(x_start), y.to(x_start)
    _check_operator(A, y, _flat(x_start).shape[1], orthonormal=True)
    ts = make_grid(grid, _check_steps(steps), path)
    S = schedule(path, ts, x_start)
    draw = Noise(generator, noise)
    x = _flat(x_start)

    def put(x, a, s):
        y_s = a * y + (s * draw(x) @ A.T if s > 0 else 0.0)   # A eps ~ N(0, I_p): A A^T = I
        return x + (y_s - x @ A.T) @ A

    for i in range(S.steps):
        final = S.is_final(i)
        for j in range(1 if final else jumps):
            x0 = _flat(denoiser(x.reshape(shape), S.times[i]))
            if final:
                x = put(x0, 1.0, 0.0)
                break
            cx, c0, cz = ddim_coefficients(S.alpha[i], S.sigma[i], S.alpha[i + 1], S.sigma[i + 1],
                                           S.lam[i], S.lam[i + 1], float(eta))
            x_s = cx * x + c0 * x0 + (cz * draw(x) if cz > 0 else 0.0)
            x_s = put(x_s, S.alpha[i + 1], S.sigma[i + 1])
            if j < jumps - 1:  # re-noise back to t: q(x_t | x_s)
                ratio = S.alpha[i] / S.alpha[i + 1]
                std = math.sqrt(max(S.sigma[i] ** 2 - (ratio * S.sigma[i + 1]) ** 2, 0.0))
                x = ratio * x_s + std * draw(x_s)
            else:
                x = x_s
    return x.reshape(shape)


def dps(denoiser: Callable, path, A: torch.Tensor, y: torch.Tensor, sigma_y: float,
        zeta: float = 1.0) -> Callable:
    """Diffusion posterior sampling (Chung et al. 2023) as a denoiser for any sampler: the score of
    ``denoiser`` plus ``zeta * grad_x log N(y; A D(x, t), sigma_y^2 I)`` (their eq. 16: the
    likelihood at the denoised estimate, its gradient through the denoiser by autograd).
    ``zeta = 1`` is the approximation taken literally; the paper tunes it per task."""
    if not float(sigma_y) > 0:
        raise ValueError(f"sigma_y must be positive for dps; got {sigma_y}")
    path = resolve_path(path)

    def log_like(x, t):
        x0 = _flat(denoiser(x, t))
        Ay = A.to(x0)
        _check_operator(Ay, y, x0.shape[1], orthonormal=False)
        r = y.to(x0) - x0 @ Ay.T
        return -0.5 * (r * r).sum(1) / float(sigma_y) ** 2

    from .guidance import _grad

    return add_score(denoiser, lambda x, t: _grad(log_like, x, t), float(zeta), path)


def posterior(denoiser: Callable, path, measurement_score: Callable) -> Callable:
    """Guidance by a measurement score ``grad_x log p_t(y | x_t)`` (``measurement_score(x, t)``): the
    denoiser of ``p_t(x | y)``. With the exact score
    (:meth:`diffkit.analytic.Gaussian.measurement_score`) this is the exact posterior sampler."""
    return add_score(denoiser, measurement_score, 1.0, path)


