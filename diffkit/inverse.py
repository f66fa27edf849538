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

**Digits inpainting** (:func:`inpaint_digits`). On the shipped 8x8 digits model
(:func:`diffkit.pretrained.load` ``"digits"``, its unconditional denoiser: the label is not told)
the same two methods complete a digit of which only some pixels are seen (``A`` = the rows of the
identity that keep the observed pixels, noiseless ``y``). The masks of :func:`digit_masks` are
named after what they hide. The completions are judged by the shipped classifier (``"digits-
classifier"``: does it still read the true label?) and by the mean-squared error on the hidden
pixels, against the number of denoiser calls.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from . import _checks
from .guidance import add_score
from .paths import MAX_STEPS
from .samplers._common import Noise, schedule
from .samplers.sample import _Counted, make_grid, resolve_path

__all__ = ["invert", "INVERTERS", "replacement", "dps", "posterior", "mask_operator", "digit_masks",
           "inpaint_digits", "INPAINTERS", "DPS_SIGMA_Y", "DPS_ZETA"]

INVERTERS = ("ddim", "dpm++2m")


def _check_steps(steps) -> int:
    return _checks.integer("steps", steps, 1, MAX_STEPS)

#: the most resamplings per step of :func:`replacement`
MAX_JUMPS = 100


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
    _checks.choice("solver", solver, INVERTERS)
    _checks.function("denoiser", denoiser)
    x0 = _checks.tensor("x0", x0, floating=True, min_dim=1)
    path = resolve_path(path)
    ts = inversion_grid(path, _check_steps(steps), grid)
    return _exponential_run(_Counted(denoiser, x0, "x0"), path, x0, ts, order=1 if solver == "ddim" else 2)


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
    if not (isinstance(mask, torch.Tensor) and mask.dtype == torch.bool):
        mask = _checks.tensor("mask", mask, convert=True)
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask must hold only 0 and 1 (or booleans)")
    mask = mask.reshape(-1).to(torch.bool)
    if not bool(mask.any()):
        raise ValueError("mask must keep at least one entry")
    return torch.eye(mask.numel(), dtype=torch.float64)[mask]


def _check_operator(A: torch.Tensor, y: torch.Tensor, dim: int, orthonormal: bool):
    A = _checks.tensor("A", A, floating=True)
    y = _checks.tensor("y", y, floating=True)
    if A.dim() != 2 or A.shape[1] != dim:
        raise ValueError(f"A must be a [p, d] tensor with d = {dim}, the flattened size of a row of "
                         f"x_start (or of the denoiser's output); got {tuple(A.shape)}")
    if y.dim() not in (1, 2) or y.shape[-1] != A.shape[0]:
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
    _checks.function("denoiser", denoiser)
    jumps = _checks.integer("jumps", jumps, 1, MAX_JUMPS)
    eta = _checks.real("eta", eta, 0.0, 1.0)
    x_start = _checks.tensor("x_start", x_start, floating=True, min_dim=1)
    _checks.generator("generator", generator)
    shape = x_start.shape
    _check_operator(A, y, _flat(x_start).shape[1], orthonormal=True)
    A, y = A.to(x_start), y.to(x_start)
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
    ``zeta = 1`` is the approximation taken literally; the paper tunes it per task. One denoiser
    call per call (under autograd) and one backward pass."""
    _checks.function("denoiser", denoiser)
    sigma_y = _checks.real("sigma_y", sigma_y, 0.0, low_open=True)
    path = resolve_path(path)
    zeta = _checks.real("zeta", zeta, 0.0)
    A = _checks.tensor("A", A, floating=True, dim=2)
    y = _checks.tensor("y", y, floating=True, dim=(1, 2))
    if y.shape[-1] != A.shape[0]:
        raise ValueError(f"y must be a [p] or [n, p] tensor with p = {A.shape[0]} (A's rows)")

    def guided(x: torch.Tensor, t) -> torch.Tensor:
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            x0 = denoiser(xg, t)
            Ay = A.to(x0)
            _check_operator(Ay, y, _flat(x0).shape[1], orthonormal=False)
            r = y.to(x0) - _flat(x0) @ Ay.T
            log_like = -0.5 * (r * r).sum() / float(sigma_y) ** 2
            if log_like.requires_grad:  # a denoiser that ignores x has no gradient
                (g,) = torch.autograd.grad(log_like, xg, allow_unused=True, materialize_grads=True)
            else:
                g = torch.zeros_like(xg)
        x0 = x0.detach()  # the one network call serves both terms, added through Tweedie
        return add_score(lambda *_: x0, lambda *_: g, zeta, path)(x, t)

    return guided


def posterior(denoiser: Callable, path, measurement_score: Callable) -> Callable:
    """Guidance by a measurement score ``grad_x log p_t(y | x_t)`` (``measurement_score(x, t)``): the
    denoiser of ``p_t(x | y)``. With the exact score
    (:meth:`diffkit.analytic.Gaussian.measurement_score`) this is the exact posterior sampler."""
    return add_score(denoiser, measurement_score, 1.0, path)




# -- digits inpainting -------------------------------------------------------------------------

INPAINTERS = ("replacement", "dps")
#: DPS on digits: the assumed measurement noise and the fixed weight ``zeta = sigma_y^2`` (the
#: gradient of ``-|y - A D(x_t, t)|^2 / 2``), the best of ``sigma_y^2 * (1/4, 1, 4)`` at 20 steps on
#: the first 120 test digits
DPS_SIGMA_Y = 0.05
DPS_ZETA = DPS_SIGMA_Y ** 2
DIGIT_SIZE = 8


def digit_masks() -> dict[str, torch.Tensor]:
    """The preset masks of 8x8 digits, each a boolean ``[8, 8]`` tensor, true where a pixel is
    *observed*; each is named after what it hides: ``"right half"`` (columns 4-7),
    ``"bottom half"`` (rows 4-7), ``"centre"`` (the central 4x4 square) and ``"random half"``
    (32 pixels chosen once by a seeded permutation, the same for every digit)."""
    n = DIGIT_SIZE
    right = torch.ones(n, n, dtype=torch.bool)
    right[:, n // 2:] = False
    bottom = torch.ones(n, n, dtype=torch.bool)
    bottom[n // 2:, :] = False
    centre = torch.ones(n, n, dtype=torch.bool)
    centre[n // 4: 3 * n // 4, n // 4: 3 * n // 4] = False
    rand = torch.ones(n * n, dtype=torch.bool)
    rand[torch.randperm(n * n, generator=torch.Generator().manual_seed(0))[: n * n // 2]] = False
    return {"right half": right, "bottom half": bottom, "centre": centre,
            "random half": rand.reshape(n, n)}


_MODELS: dict = {}


def _shipped(name: str):
    if name not in _MODELS:
        from . import pretrained

        _MODELS[name] = pretrained.load(name)
    return _MODELS[name]


def inpaint_digits(images: torch.Tensor, mask: torch.Tensor, method: str = "replacement",
                   steps: int = 20, *, labels: torch.Tensor | None = None, seed: int = 0,
                   jumps: int = 1, zeta: float = DPS_ZETA, sigma_y: float = DPS_SIGMA_Y,
                   denoiser: Callable | None = None, classifier: Callable | None = None) -> dict:
    """Complete the hidden pixels of 8x8 ``images [n, 1, 8, 8]`` (in ``[-1, 1]``) from the pixels
    where ``mask [8, 8]`` (boolean, true = observed, at least one) is true.

    ``method``: ``"replacement"`` (:func:`replacement`, DDPM steps, ``jumps`` resamplings per step;
    ``(steps - 1) * jumps + 1`` denoiser calls) or ``"dps"`` (:func:`dps` with ``sigma_y`` and
    ``zeta``, run by the ``ddpm`` sampler; ``steps`` calls, each with a backward pass through the
    network). Both start from the prior draw of ``seed`` (the sampler's draws from ``seed + 1``),
    so a run is deterministic in its inputs. ``denoiser`` defaults to the shipped ``digits``
    model's unconditional denoiser, ``classifier`` to the shipped ``digits-classifier``.

    Returns a dict: ``x`` the completions (clipped to ``[-1, 1]``, the observed pixels put back
    exactly: DPS only fits them approximately), ``observed`` the images with the hidden pixels at
    the background value ``-1`` (what is seen), ``nfe`` (denoiser calls), ``predicted`` the
    classifier's reading of each completion; with ``labels``: ``accuracy`` (fraction read as the
    label), ``mse`` (mean-squared error over the hidden pixels, ``nan`` when none is hidden) and
    ``observed_accuracy`` (the classifier on ``observed``: the baseline without completion).
    """
    from .samplers.sample import sample

    if method not in INPAINTERS:
        raise ValueError(f"method must be one of {', '.join(INPAINTERS)}; got {method!r}")
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != (1, 8, 8):
        raise ValueError("images must be a [n, 1, 8, 8] tensor")
    mask = torch.as_tensor(mask).to(torch.bool)
    if tuple(mask.shape) != (DIGIT_SIZE, DIGIT_SIZE):
        raise ValueError(f"mask must be a boolean [8, 8] tensor; got shape {tuple(mask.shape)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0; got {seed!r}")
    model = _shipped("digits")
    path = model.path
    D = _Counted(model.denoiser() if denoiser is None else denoiser, images, "images")
    images = images.to(torch.float32)
    n = images.shape[0]
    A = mask_operator(mask).to(images)
    y = _flat(images) @ A.T
    x1 = path.prior(tuple(images.shape), generator=torch.Generator().manual_seed(seed), dtype=images.dtype)
    gen = torch.Generator().manual_seed(seed + 1)
    if method == "replacement":
        with torch.no_grad():
            out = replacement(D, path, x1, A, y, steps, jumps=jumps, generator=gen)
    else:
        out = sample(dps(D, path, A, y, sigma_y, zeta), path, x1, solver="ddpm", steps=_check_steps(steps),
                     generator=gen).x.detach()
    hidden = ~mask
    out = out.clamp(-1.0, 1.0)
    out[:, :, mask] = images[:, :, mask]
    observed = images.clone()
    observed[:, :, hidden] = -1.0
    clf = classifier if classifier is not None else _shipped("digits-classifier").net.eval()
    with torch.no_grad():
        predicted = clf(out).argmax(1)
    res = dict(x=out, observed=observed, nfe=D.calls, predicted=predicted)
    if labels is not None:
        labels = torch.as_tensor(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must be [{n}] ints (one per image)")
        with torch.no_grad():
            base = clf(observed).argmax(1)
        res["accuracy"] = float((predicted == labels).float().mean())
        res["observed_accuracy"] = float((base == labels).float().mean())
        res["mse"] = float(((out - images)[:, :, hidden] ** 2).mean()) if bool(hidden.any()) else float("nan")
    return res
