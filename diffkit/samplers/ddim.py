"""DDIM (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models", eq. 12), on any path."""

from __future__ import annotations

import math

import torch

from .. import _checks
from ._common import Noise, one_call_loop, one_minus_ratio, schedule
from .registry import register

__all__ = ["ddim", "ddim_coefficients"]


def ddim_coefficients(a_t: float, s_t: float, a_s: float, s_s: float, lam_t: float, lam_s: float,
                      eta: float) -> tuple[float, float, float]:
    """Weights ``(on x, on x0, on z)`` of one DDIM step from ``t`` to ``s < t`` (eq. 12):

    ``x_s = alpha_s x0 + sqrt(sigma_s^2 - c^2) eps_hat + c z``,  ``eps_hat = (x_t - alpha_t x0) / sigma_t``,

    ``c^2 = eta^2 sigma_s^2 (1 - e^(logsnr_t - logsnr_s))``: ``eta^2`` times the variance of the
    posterior ``q(x_s | x_t, x0)`` (eq. 16 written for a general path), so ``eta = 1`` is DDPM and
    ``eta = 0`` the deterministic DDIM, the exponential-integrator step of the probability-flow ODE.
    """
    c = eta * s_s * math.sqrt(one_minus_ratio(lam_t, lam_s))
    d = math.sqrt(max(s_s * s_s - c * c, 0.0))
    return d / s_t, a_s - d * a_t / s_t, c


@register("ddim", stochastic=True)
def ddim(denoiser, path, x: torch.Tensor, ts: torch.Tensor, *, eta: float = 0.0,
         generator=None, noise=None, callback=None) -> torch.Tensor:
    """DDIM with ``eta`` (Song et al. 2021, eq. 12; see :func:`ddim_coefficients`).

    ``eta = 0``: deterministic (no noise drawn); ``eta = 1``: the ancestral DDPM sampler.
    One denoiser call per step. Final step onto ``t = 0``: ``x = D(x, t_prev)`` (``sigma_s = 0``
    in eq. 12), with no noise.
    """
    eta = _checks.real("eta", eta, 0.0, 1.0)
    S = schedule(path, ts, x)

    def weights(i):
        return ddim_coefficients(S.alpha[i], S.sigma[i], S.alpha[i + 1], S.sigma[i + 1],
                                 S.lam[i], S.lam[i + 1], eta)

    return one_call_loop(denoiser, S, x, weights, Noise(generator, noise), callback)
