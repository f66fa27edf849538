"""Samplers of the reverse SDE (Song et al. 2021, "Score-Based Generative Modeling through SDEs").

A Gaussian path is the marginal law of the forward SDE ``dx = f(t) x dt + g(t) dw`` with
``f = alpha' / alpha`` and ``g^2 = (sigma^2)' - 2 f sigma^2`` (Kingma et al. 2021, App. A; Song et al.
2021, eq. 5). Its reverse (Anderson 1982; Song et al. 2021, eq. 6) runs from ``t = 1`` to 0:

    ``dx = [f x - g^2 score(x, t)] dt + g dw_bar``,  ``score = -(x - alpha D(x, t)) / sigma^2``.

Every step is linear in ``(x, D, z)``, with weights computed before the loop; the final step onto
``t = 0`` is the denoising step ``x = D(x, t_prev)`` with no noise (Song et al.'s ``denoise=True``).
"""

from __future__ import annotations

import math

import torch

from .. import _checks
from ._common import Noise, combine, one_call_loop, one_minus_ratio, schedule
from .registry import register

__all__ = ["euler_maruyama", "predictor_corrector", "drift_and_diffusion"]


def drift_and_diffusion(a: float, s: float, da: float, ds: float) -> tuple[float, float]:
    """``(f, g^2)`` of the forward SDE at one time: ``f = alpha'/alpha``,
    ``g^2 = 2 sigma sigma' - 2 f sigma^2``."""
    f = da / a
    return f, 2.0 * s * ds - 2.0 * f * s * s


def _em_weights(S, i):
    """Euler-Maruyama step of the reverse SDE from ``t_i`` to ``t_{i+1}`` (``h < 0``):
    ``x + h (f x + g^2 (x - alpha D) / sigma^2) + g sqrt(-h) z`` -> weights on ``(x, D, z)``."""
    h = S.t[i + 1] - S.t[i]
    a, s = S.alpha[i], S.sigma[i]
    f, g2 = drift_and_diffusion(a, s, S.dalpha[i], S.dsigma[i])
    return 1.0 + h * (f + g2 / (s * s)), -h * g2 * a / (s * s), math.sqrt(max(g2 * -h, 0.0))


def _reverse_diffusion_weights(S, i):
    """Song et al.'s reverse-diffusion predictor (2021, eq. 47 / App. E) from ``t = t_i`` to
    ``s = t_{i+1}``: ``x_s = (2 - a) x + G^2 score + G z`` where the forward discretisation is
    ``x_t = a x_s + G eps``, ``a = alpha_t / alpha_s``, ``G^2 = sigma_t^2 (1 - e^(logsnr_t - logsnr_s))``
    (for VP: ``a = sqrt(1 - beta_i)``, ``G^2 = beta_i``; for VE: ``G^2 = sigma_i^2 - sigma_{i-1}^2``)."""
    a_t, s_t = S.alpha[i], S.sigma[i]
    ratio = a_t / S.alpha[i + 1]
    g2 = s_t * s_t * one_minus_ratio(S.lam[i], S.lam[i + 1])
    return 2.0 - ratio - g2 / (s_t * s_t), g2 * a_t / (s_t * s_t), math.sqrt(g2)


@register("euler-maruyama", stochastic=True)
def euler_maruyama(denoiser, path, x: torch.Tensor, ts: torch.Tensor, *, generator=None,
                   noise=None, callback=None) -> torch.Tensor:
    """Euler-Maruyama on the reverse SDE in ``t`` (Song et al. 2021, eq. 6; Kloeden & Platen 1992).

    Strong order 1/2, weak order 1; one denoiser call per step. Final step onto ``t = 0``:
    ``x = D(x, t_prev)``, no noise.
    """
    S = schedule(path, ts, x)
    return one_call_loop(denoiser, S, x, lambda i: _em_weights(S, i), Noise(generator, noise), callback)


PREDICTORS = ("reverse-diffusion", "euler-maruyama")

#: the range of the Langevin corrector's signal-to-noise ratio (Song et al. use 0.01 to 0.16; a
#: step multiplies the state by ``1 - 2 snr^2``, which must stay well above 0) and the most
#: corrector steps per grid point
SNR_RANGE = (0.0, 0.5)
MAX_CORRECTOR_STEPS = 100


@register("pc", stochastic=True)
def predictor_corrector(denoiser, path, x: torch.Tensor, ts: torch.Tensor, *,
                        predictor: str = "reverse-diffusion", snr: float = 0.16,
                        corrector_steps: int = 1, generator=None, noise=None, callback=None
                        ) -> torch.Tensor:
    """Predictor-corrector sampling (Song et al. 2021, Alg. 1 with Algs. 2-5).

    At each grid point ``t_i``: ``corrector_steps`` Langevin steps at fixed ``t_i``
    (``x <- x + eps score + sqrt(2 eps) z``), then the predictor to ``t_{i+1}``: the
    ``reverse-diffusion`` step (eq. 47) or an ``euler-maruyama`` step. The Langevin step size is
    Song et al.'s ``eps = 2 (snr ||z|| / ||score||)^2`` with the norms at their typical values
    ``||z||^2 = d`` and ``||score||^2 = d / sigma_t^2``, i.e. ``eps = 2 (snr sigma_t)^2``: a rule
    that depends on the grid only, so the run stays affine in its start and its noise (its exact law
    is Gaussian for Gaussian data) and never synchronises with an accelerator.

    ``snr`` lies in ``SNR_RANGE``, ``corrector_steps`` in ``[0, MAX_CORRECTOR_STEPS]``.
    ``1 + corrector_steps`` denoiser calls per step. A trajectory records the state at ``t_i``
    before the correctors and the prediction the predictor used (after them). Final step onto ``t = 0``: the correctors,
    then ``x = D(x, t_prev)`` with no noise.
    """
    _checks.choice("predictor", predictor, PREDICTORS)
    corrector_steps = _checks.integer("corrector_steps", corrector_steps, 0, MAX_CORRECTOR_STEPS)
    snr = _checks.real("snr", snr, *SNR_RANGE)
    S = schedule(path, ts, x)
    draw = Noise(generator, noise)
    weights = _reverse_diffusion_weights if predictor == "reverse-diffusion" else _em_weights
    for i in range(S.steps):
        a, s = S.alpha[i], S.sigma[i]
        eps = 2.0 * (snr * s) ** 2
        x_i = x
        for _ in range(corrector_steps):
            x0 = denoiser(x, S.times[i])
            # x + eps * score + sqrt(2 eps) z, score = -(x - a D) / s^2
            x = combine(x, 1.0 - eps / (s * s), x0, eps * a / (s * s), draw(x), math.sqrt(2.0 * eps))
        x0 = denoiser(x, S.times[i])
        if callback is not None:
            callback(i, x_i, x0)
        if S.is_final(i):
            x = x0
            continue
        cx, c0, cz = weights(S, i)
        x = combine(x, cx, x0, c0, draw(x), cz)
    return x
