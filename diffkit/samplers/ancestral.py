"""Ancestral sampling (Ho, Jain & Abbeel 2020, "Denoising Diffusion Probabilistic Models")."""

from __future__ import annotations

import math

import torch

from ._common import Noise, one_call_loop, one_minus_ratio, schedule
from .registry import register

__all__ = ["ddpm", "posterior_coefficients"]


def posterior_coefficients(a_t: float, s_t: float, a_s: float, s_s: float, lam_t: float,
                           lam_s: float) -> tuple[float, float, float]:
    """Mean weights and standard deviation of ``q(x_s | x_t, x0)`` for ``s < t`` (Ho et al. 2020,
    eqs. 6-7, written for a general path ``x_t = alpha_t x0 + sigma_t eps``):

    ``mean = (alpha_{t|s} sigma_s^2 / sigma_t^2) x_t + (alpha_s sigma_{t|s}^2 / sigma_t^2) x0``,
    ``var = sigma_{t|s}^2 sigma_s^2 / sigma_t^2``, with ``alpha_{t|s} = alpha_t / alpha_s`` and
    ``sigma_{t|s}^2 = sigma_t^2 (1 - e^(logsnr_t - logsnr_s))``, the forward kernel from ``s`` to ``t``.
    """
    frac = one_minus_ratio(lam_t, lam_s)          # sigma_{t|s}^2 / sigma_t^2
    on_x = (a_t / a_s) * (s_s / s_t) ** 2
    on_x0 = a_s * frac
    std = s_s * math.sqrt(frac)
    return on_x, on_x0, std


@register("ddpm", stochastic=True)
def ddpm(denoiser, path, x: torch.Tensor, ts: torch.Tensor, *, generator=None, noise=None,
         callback=None) -> torch.Tensor:
    """Ancestral sampling: ``x_s ~ q(x_s | x_t, x0 = D(x_t, t))`` at each step (Ho et al. 2020,
    Alg. 2, on any path and grid; see :func:`posterior_coefficients`).

    One denoiser call per step. Final step onto ``t = 0``: the posterior collapses to
    ``x = D(x, t_prev)``, with no noise. Equal in law (and, draw for draw, in value) to
    ``ddim`` with ``eta = 1``.
    """
    S = schedule(path, ts, x)

    def weights(i):
        return posterior_coefficients(S.alpha[i], S.sigma[i], S.alpha[i + 1], S.sigma[i + 1],
                                      S.lam[i], S.lam[i + 1])

    return one_call_loop(denoiser, S, x, weights, Noise(generator, noise), callback)
