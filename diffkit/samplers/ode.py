"""Classical solvers of the probability-flow ODE: Euler and RK4 in ``t``, and EDM's Heun.

The probability-flow ODE (Song et al. 2021, eq. 13) of a Gaussian path is ``dx/dt = u(x, t)``
with the flow-matching velocity ``u = alpha' x0 + sigma' eps`` (Lipman et al. 2022), ``x0 = D(x, t)``
(:mod:`diffkit.views`). It is linear in ``(x, D)``, so each stage is ``w_x x + w_0 D(x, t)`` with
weights computed before the loop.

No solver here evaluates the denoiser at ``t = 0``: a step that lands on the data is the
first-order denoising step ``x = D(x, t_prev)`` (the exact limit of DDIM, and what EDM's Alg. 2
and DPM-Solver do on their last step).
"""

from __future__ import annotations

import math

import torch

from .. import _checks
from ._common import Noise, combine, memo, one_call_loop, schedule, velocity_weights
from .registry import register

__all__ = ["euler", "rk4", "heun", "heun_noise_levels"]


@register("euler")
def euler(denoiser, path, x: torch.Tensor, ts: torch.Tensor, *, generator=None, noise=None,
          callback=None) -> torch.Tensor:
    """Explicit Euler in ``t`` on the probability-flow ODE: ``x_{i+1} = x_i + (t_{i+1} - t_i) u(x_i, t_i)``.

    First order; one denoiser call per step. Final step onto ``t = 0``: ``x = D(x, t_prev)``. On the
    ``linear`` path this is exactly DDIM with ``eta = 0`` (there ``u = (x - D) / t``).
    """
    S = schedule(path, ts, x)
    wx, w0 = velocity_weights(path, S.ts[:-1])

    def weights(i):  # x + h u(x, t_i), u = w_x x + w_0 D
        h = S.t[i + 1] - S.t[i]
        return 1.0 + h * wx[i], h * w0[i], 0.0

    return one_call_loop(denoiser, S, x, weights, callback=callback)


@register("rk4")
def rk4(denoiser, path, x: torch.Tensor, ts: torch.Tensor, *, generator=None, noise=None,
        callback=None) -> torch.Tensor:
    """The classical fourth-order Runge-Kutta method in ``t`` on the probability-flow ODE
    (Kutta 1901): stages at ``t``, ``t + h/2`` (twice) and ``t + h``,
    ``x_{i+1} = x_i + h (k1 + 2 k2 + 2 k3 + k4) / 6``.

    Four denoiser calls per step. Final step onto ``t = 0``: ``x = D(x, t_prev)`` (one call), since
    its last stage would need ``D`` at ``t = 0``.
    """
    S = schedule(path, ts, x)
    n = S.steps
    mids = 0.5 * (S.ts[:-1] + S.ts[1:])
    wx, w0 = velocity_weights(path, S.ts[:-1])
    mx, m0 = velocity_weights(path, mids)
    ex, e0 = velocity_weights(path, torch.where(S.ts[1:] > 0, S.ts[1:], mids))
    mid_times = memo("rk4-mid", path, S.ts, (x.dtype, x.device),
                     lambda: tuple(mids.to(dtype=x.dtype, device=x.device).unbind(0)))
    for i in range(n):
        x0 = denoiser(x, S.times[i])
        if callback is not None:
            callback(i, x, x0)
        if S.is_final(i):
            x = x0
            continue
        h = S.t[i + 1] - S.t[i]
        k1 = combine(x, wx[i], x0, w0[i])
        xm = combine(x, 1.0, k1, 0.5 * h)
        k2 = combine(xm, mx[i], denoiser(xm, mid_times[i]), m0[i])
        xm = combine(x, 1.0, k2, 0.5 * h)
        k3 = combine(xm, mx[i], denoiser(xm, mid_times[i]), m0[i])
        xe = combine(x, 1.0, k3, h)
        k4 = combine(xe, ex[i], denoiser(xe, S.times[i + 1]), e0[i])
        x = combine(x, 1.0, k1, h / 6.0, k2, h / 3.0, k3, h / 3.0, k4, h / 6.0)
    return x


def heun_noise_levels(path, S, churn: float, s_tmin: float, s_tmax: float):
    """EDM's stochastic churn (Karras et al. 2022, Alg. 2, lines 4-5) on the grid ``S``:
    ``gamma_i = min(churn / N, sqrt(2) - 1)`` where ``s_tmin <= s_i <= s_tmax`` (else 0), the raised
    level ``s_hat = (1 + gamma_i) s_i`` in EDM's ``s = sigma / alpha`` (capped at the path's value at
    ``t = 1``) and the time ``t_hat`` where the path reaches it. Returns lists
    ``(s, s_hat, t_hat, alpha_hat)``; ``s_hat = s`` and ``t_hat = t`` where ``gamma_i = 0``.
    """
    n = S.steps
    s = [math.exp(-lam) for lam in S.lam]
    s_hat, t_hat, a_hat = list(s[:n]), list(S.t[:n]), list(S.alpha[:n])
    if churn > 0:
        gamma = min(churn / n, math.sqrt(2.0) - 1.0)
        a1, s1 = float(path.alpha(1.0)), float(path.sigma(1.0))
        s_top = s1 / a1 if a1 > 0 else math.inf
        for i in range(n):
            if s_tmin <= s[i] <= s_tmax:
                level = min(s[i] * (1.0 + gamma), s_top)
                if level > s[i]:
                    th = min(max(float(path.t_from_logsnr(-2.0 * math.log(level))), S.t[i]), 1.0)
                    s_hat[i], t_hat[i], a_hat[i] = level, th, float(path.alpha(th))
    return s, s_hat, t_hat, a_hat


#: the largest noise inflation of EDM's churn step (EDM tunes it in [1, 1.01])
MAX_S_NOISE = 10.0


@register("heun", stochastic=True)
def heun(denoiser, path, x: torch.Tensor, ts: torch.Tensor, *, churn: float = 0.0,
         s_tmin: float = 0.0, s_tmax: float = math.inf, s_noise: float = 1.0,
         generator=None, noise=None, callback=None) -> torch.Tensor:
    """EDM's second-order sampler (Karras et al. 2022, Alg. 2), in EDM's variables
    ``y = x / alpha`` against ``s = sigma / alpha`` (where the ODE is ``dy/ds = (y - D) / s``).

    With ``churn > 0`` each step first raises the noise level from ``s_i`` to ``s_hat`` by adding
    ``sqrt(s_hat^2 - s_i^2) * s_noise * z`` (lines 4-6; see :func:`heun_noise_levels`); then an Euler
    step to ``s_{i+1}`` and the trapezoidal (Heun) correction (lines 7-11). ``churn = 0`` is the
    deterministic Heun method: two denoiser calls per step. Final step onto ``t = 0``: the Euler
    step alone, which is ``x = D(x_hat, t_hat)`` (line 9's ``sigma_{i+1} = 0`` branch).

    ``churn``, ``s_tmin`` are finite and ``>= 0``, ``s_tmax >= s_tmin`` (``inf`` allowed),
    ``s_noise`` in ``[0, MAX_S_NOISE]``.
    """
    churn = _checks.real("churn", churn, low=0.0)
    s_noise = _checks.real("s_noise", s_noise, low=0.0, high=MAX_S_NOISE)
    s_tmin = _checks.real("s_tmin", s_tmin, low=0.0)
    s_tmax = _checks.real("s_tmax", s_tmax, low=s_tmin, allow_inf=True)
    S = schedule(path, ts, x)
    n = S.steps

    def levels():
        s, s_hat, t_hat, a_hat = heun_noise_levels(path, S, float(churn), float(s_tmin), float(s_tmax))
        hat = torch.tensor(t_hat, dtype=torch.float64).to(dtype=x.dtype, device=x.device)
        return s, s_hat, a_hat, tuple(hat.unbind(0))

    s, s_hat, a_hat, hat_times = memo("heun", path, S.ts, (float(churn), float(s_tmin),
                                      float(s_tmax), x.dtype, x.device), levels)
    draw = Noise(generator, noise)
    y = x / S.alpha[0]
    for i in range(n):
        y_hat = y
        if s_hat[i] > s[i]:
            y_hat = y + (math.sqrt(s_hat[i] ** 2 - s[i] ** 2) * s_noise) * draw(y)
        times = hat_times[i] if s_hat[i] > s[i] else S.times[i]
        d0 = denoiser(x if i == 0 and y_hat is y else a_hat[i] * y_hat, times)
        if callback is not None:
            callback(i, x if i == 0 else S.alpha[i] * y, d0)
        if S.is_final(i):
            y = d0
            continue
        step = s[i + 1] - s_hat[i]
        slope = combine(y_hat, 1.0 / s_hat[i], d0, -1.0 / s_hat[i])        # (y_hat - d0) / s_hat
        y_next = combine(y_hat, 1.0, slope, step)
        d1 = denoiser(S.alpha[i + 1] * y_next, S.times[i + 1])
        # y_hat + step / 2 (slope + (y_next - d1) / s_{i+1})
        y = combine(y_hat, 1.0, slope, 0.5 * step, y_next, 0.5 * step / s[i + 1],
                    d1, -0.5 * step / s[i + 1])
    return S.alpha[-1] * y
