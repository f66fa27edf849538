"""Likelihoods of a diffusion model: exact by the probability-flow ODE, bounded by the ELBO.

**Probability flow.** The probability-flow ODE ``dx/dt = u(x, t)`` (Song et al. 2021, eq. 13; ``u``
the velocity of the denoiser, :mod:`diffkit.views`) carries the prior at ``t_max`` to a law
``p_t`` at every ``t``, and along a trajectory the instantaneous change of variables (Chen et al.
2018, Thm. 1) gives ``d log p_t(x_t) / dt = -div u(x_t, t)``. Hence

    ``log p_{t_min}(x) = log p_prior(x_{t_max}) + int_{t_min}^{t_max} div u(x_t, t) dt``,

with ``x_t`` the ODE solution started at ``x_{t_min} = x``. :func:`log_prob` solves the state and
the integral together with ``torchdiffeq`` (dopri5), in the half logSNR ``lam = log(alpha/sigma)``
as :func:`diffkit.samplers.adaptive.adaptive` does. The divergence is exact (``d`` backward passes,
``method="exact-trace"``) or Hutchinson's estimate ``E[e^T J e]`` with Rademacher probes ``e``
fixed along the solve (Hutchinson 1989; FFJORD, Grathwohl et al. 2019), unbiased for the log
density's integral term. The prior defaults to the path's, ``N(0, sigma(t_max)^2 I)``: the law
the samplers start from, so ``log_prob`` is the log-density of what the PF-ODE sampler draws.

**ELBO.** :func:`elbo` is the continuous-time variational bound of Kingma et al. (2021, VDM,
eq. 14-17) for the same model, estimated by Monte Carlo over ``t ~ U[t_min, t_max]`` and the noise:
prior KL + diffusion loss (the variational weighting of :func:`diffkit.losses.weight`) +
Gaussian reconstruction at ``t_min``. It is an upper bound on ``-log p`` and is tight for the
exact denoiser of Gaussian data (:meth:`diffkit.analytic.Gaussian.elbo`).

**Bits per dimension.** For data quantised to bins of width ``bin_width`` (8x8 digits: 17 levels
on ``[-1, 1]``, width ``2/16``), uniform dequantisation (Theis et al. 2016) turns a continuous
density into a discrete model with ``-log P(bin) <= E_u[-log p(x + u)] - d log(bin_width)``, ``u``
uniform on the bin around ``x`` (:func:`dequantise`: ``u ~ U[-w/2, w/2)^d``, bins centred on the
levels); :func:`bits_per_dim` reports ``(-log p - d log bin_width) / (d log 2)``, the dequantised
bound in bits per dimension.

**Digits** (:func:`digits_bits_per_dim`). The shipped digits model was trained on the 17 levels
themselves, so below a noise level of about a bin its density is a comb of spikes at the levels:
read at the usual ``t_min`` (logSNR 20, ``sigma/alpha = 0.002``) a dequantised point falls between
the spikes and costs tens of bits per dimension. The density it is read at is therefore that of
``x_{t_min}`` at logSNR 6 (``sigma/alpha = e^{-3} = 0.05``, 0.4 bins): still a density on
``R^d``, so the dequantisation bound holds for the discrete model it defines; the benchmark shows
the number against that choice.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from . import _checks
from .losses import draw, weight
from .paths import LOGSNR_MAX, as_time, get
from .samplers.sample import _Counted
from .views import from_x0

__all__ = ["log_prob", "divergence", "rademacher", "elbo", "bits_per_dim", "METHODS", "dequantise",
           "digits_bits_per_dim", "DIGITS_BIN_WIDTH", "DIGITS_LOGSNR_MIN"]

METHODS = ("exact-trace", "hutchinson")
#: the most Hutchinson probes per row of :func:`log_prob` and ELBO draws per point of :func:`elbo`
MAX_PROBES = 4096
MAX_ELBO_SAMPLES = 100_000


def _check_method(method: str) -> None:
    _checks.choice("method", method, METHODS)


def _check_times(t_min, t_max, default_t_min: float, default_t_max: float) -> tuple[float, float]:
    t_min = default_t_min if t_min is None else _checks.real("t_min", t_min, 0.0, 1.0, low_open=True)
    t_max = default_t_max if t_max is None else _checks.real("t_max", t_max, 0.0, 1.0, low_open=True)
    if not t_min < t_max:
        raise ValueError(f"t_min must be below t_max; got t_min={t_min}, t_max={t_max}")
    return t_min, t_max


def _default_t_min(path) -> float:
    return float(path.t_from_logsnr(LOGSNR_MAX))


def divergence(f: Callable, x: torch.Tensor, method: str = "exact-trace",
               probes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f(x), div f(x))`` for a map ``f`` of ``[n, ...]`` batches whose rows are independent.

    ``"exact-trace"``: the trace of the Jacobian, one backward pass per dimension.
    ``"hutchinson"``: ``mean_j e_j^T J e_j`` over the probes ``probes [m, n, ...]`` (Rademacher:
    ``E[e e^T] = I`` makes each term unbiased). Runs under ``enable_grad``; the result is detached
    unless ``x`` itself requires grad.
    """
    _check_method(method)
    with torch.enable_grad():
        xg = x if x.requires_grad else x.detach().requires_grad_(True)
        y = f(xg)
        flat = y.reshape(y.shape[0], -1)
        if method == "exact-trace":
            div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
            for i in range(flat.shape[1]):
                (g,) = torch.autograd.grad(flat[:, i].sum(), xg, retain_graph=True)
                div = div + g.reshape(g.shape[0], -1)[:, i]
        else:
            if probes is None:
                raise ValueError("probes are needed for method='hutchinson'")
            div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
            for e in probes:
                (g,) = torch.autograd.grad(y, xg, grad_outputs=e, retain_graph=True)
                div = div + (g * e).reshape(g.shape[0], -1).sum(1)
            div = div / probes.shape[0]
    return y.detach(), div.detach()


def rademacher(shape, generator: torch.Generator | None = None, dtype=torch.float64, device=None):
    """Independent signs ``+-1`` of ``shape``."""
    bits = torch.randint(0, 2, tuple(shape), generator=generator, device=device)
    return (2 * bits - 1).to(dtype)


def _gaussian_log_prob(x: torch.Tensor, std) -> torch.Tensor:
    d = x[0].numel()
    flat = x.reshape(x.shape[0], -1)
    return -0.5 * (flat ** 2).sum(1) / std ** 2 - d * torch.log(std) - 0.5 * d * math.log(2 * math.pi)


def log_prob(denoiser: Callable, path, x: torch.Tensor, method: str = "exact-trace", *,
             t_min=None, t_max=None, rtol: float = 1e-6, atol: float = 1e-6,
             probes: int = 1, generator: torch.Generator | None = None,
             prior_log_prob: Callable | None = None, ode_method: str = "dopri5") -> torch.Tensor:
    """``log p_{t_min}(x)`` of the model whose probability-flow ODE is driven by ``denoiser``: ``[n]``
    nats (see the module docstring). ``x``: ``[n, ...]``, floating point (float64 for checks).

    ``t_min`` defaults to where the path's logSNR is ``LOGSNR_MAX`` (the denoiser is never called at
    ``t = 0``) and ``t_max`` to where the named grids start (:meth:`GaussianPath.t_start`: 1, or
    logSNR = -20 on ``linear``); ``prior_log_prob(x) -> [n]`` defaults to ``N(0, sigma(t_max)^2 I)``. ``method``:
    ``"exact-trace"`` or ``"hutchinson"`` with ``probes`` Rademacher probes per row drawn from
    ``generator``; ``rtol``/``atol``/``ode_method``: ``torchdiffeq.odeint``'s.
    """
    from torchdiffeq import odeint

    _check_method(method)
    _checks.function("denoiser", denoiser)
    x = _checks.tensor("x", x, floating=True, min_dim=2)
    probes = _checks.integer("probes", probes, 1, MAX_PROBES)
    rtol = _checks.real("rtol", rtol, 0.0, 1.0, low_open=True)
    atol = _checks.real("atol", atol, 0.0, 1.0, low_open=True)
    _checks.generator("generator", generator)
    if prior_log_prob is not None:
        _checks.function("prior_log_prob", prior_log_prob, "a callable log p(x) -> [n]")
    path = get(path)
    t_min, t_max = _check_times(t_min, t_max, _default_t_min(path), float(path.t_start))
    e = None
    if method == "hutchinson":
        e = rademacher((probes, *x.shape), generator, x.dtype, x.device)

    def field(lam: torch.Tensor, state):
        y, _ = state
        t = path.t_from_logsnr(2.0 * lam).clamp(max=1.0)
        rate = 0.5 * path.dlogsnr(t)                                      # dlam/dt

        def f(z):
            return from_x0("velocity", denoiser(z, t), z, t, path) / rate

        dy, div = divergence(f, y, method, e)
        return dy, div

    lam = torch.stack([0.5 * path.logsnr(as_time(t_min, like=x)), 0.5 * path.logsnr(as_time(t_max, like=x))])
    start = (x.detach(), torch.zeros(x.shape[0], dtype=x.dtype, device=x.device))
    ys, integral = odeint(field, start, lam, rtol=float(rtol), atol=float(atol), method=ode_method)
    x_end = ys[-1]
    if prior_log_prob is None:
        std = path.sigma(as_time(t_max, like=x))
        prior = _gaussian_log_prob(x_end, std)
    else:
        prior = prior_log_prob(x_end)
    return prior + integral[-1]


def elbo(denoiser: Callable, path, x0: torch.Tensor, samples: int = 64, *, t_min=None,
         t_max: float = 1.0, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Monte-Carlo estimate of the continuous-time negative ELBO in nats per data point ``[n]``
    (Kingma et al. 2021, eq. 14-17), with ``samples`` draws of ``(t, eps)`` per point:

    * ``prior``: ``KL(N(alpha x0, sigma^2 I) || N(0, sigma^2 I)) = SNR(t_max) |x0|^2 / 2`` at ``t_max``;
    * ``diffusion``: ``(t_max - t_min) E_t[w(t) |x0 - D(x_t, t)|^2]``, ``w = -1/2 dSNR/dt``
      (:func:`diffkit.losses.weight`, view ``"variational"``);
    * ``reconstruction``: ``-E log N(x0; x_{t_min} / alpha, (sigma / alpha)^2 I)
      = d/2 (log 2 pi - logsnr(t_min) + 1)``.

    Returns the terms, their ``total``, the standard error ``total_se`` of the diffusion term's
    Monte-Carlo mean, and ``bpd`` (total in bits per dimension, continuous data).
    """
    _checks.function("denoiser", denoiser)
    x0 = _checks.tensor("x0", x0, floating=True, min_dim=2)
    samples = _checks.integer("samples", samples, 1, MAX_ELBO_SAMPLES)
    _checks.generator("generator", generator)
    path = get(path)
    t_min, t_max = _check_times(t_min, t_max, _default_t_min(path), 1.0)
    n, d = x0.shape[0], x0[0].numel()
    rep = x0.repeat_interleave(samples, dim=0)
    t, _, x_t = draw(rep, path, generator, t_min, t_max)
    with torch.no_grad():
        err = (_Counted(denoiser, x0, "x0")(x_t, t) - rep).reshape(rep.shape[0], -1).pow(2).sum(1)
    terms = ((float(t_max) - t_min) * weight("variational", t, path) * err).reshape(n, samples)
    diffusion = terms.mean(1)
    se = terms.std(1) / math.sqrt(samples) if samples > 1 else torch.full_like(diffusion, float("nan"))
    tmax = as_time(t_max, like=x0)
    prior = 0.5 * torch.exp(path.logsnr(tmax)) * x0.reshape(n, -1).pow(2).sum(1)
    l_hi = path.logsnr(as_time(t_min, like=x0))
    recon = torch.full_like(diffusion, 0.5 * d) * (math.log(2 * math.pi) - l_hi + 1.0)
    total = prior + diffusion + recon
    return dict(prior=prior, diffusion=diffusion, reconstruction=recon, total=total, total_se=se,
                bpd=total / (d * math.log(2.0)))


def bits_per_dim(log_prob_nats: torch.Tensor, dim: int, bin_width: float | None = None) -> torch.Tensor:
    """``-log p`` in bits per dimension; with ``bin_width`` (uniform dequantisation of data on a grid
    of that spacing) ``(-log p - dim log bin_width) / (dim log 2)``, a bound on the discrete model's
    bits per dimension (see the module docstring)."""
    log_prob_nats = _checks.tensor("log_prob_nats", log_prob_nats, floating=True, convert=True)
    dim = _checks.integer("dim", dim, 1)
    nll = -log_prob_nats
    if bin_width is not None:
        bin_width = _checks.real("bin_width", bin_width, 0.0, low_open=True)
        nll = nll - dim * math.log(bin_width)
    return nll / (dim * math.log(2.0))



#: the spacing of the digits' 17 levels on ``[-1, 1]`` (pixel values 0..16 mapped by ``v / 8 - 1``)
DIGITS_BIN_WIDTH = 2.0 / 16
#: the logSNR of the time at which the digits model's density is read (see the module docstring)
DIGITS_LOGSNR_MIN = 6.0


def dequantise(x: torch.Tensor, bin_width: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x + u`` with ``u ~ U[-bin_width/2, bin_width/2)`` independently per entry: a uniform point
    in the bin centred on each quantised value (the bins of the levels tile the line)."""
    x = _checks.tensor("x", x, floating=True)
    bin_width = _checks.real("bin_width", bin_width, 0.0, low_open=True)
    _checks.generator("generator", generator)
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + (u - 0.5) * bin_width


def digits_bits_per_dim(images: torch.Tensor, *, denoiser: Callable | None = None,
                        logsnr_min: float = DIGITS_LOGSNR_MIN, method: str = "hutchinson",
                        probes: int = 1, rtol: float = 1e-4, atol: float = 1e-4,
                        elbo_samples: int = 512, seed: int = 0) -> dict:
    """Bits per dimension of 8x8 digits ``images [n, 1, 8, 8]`` (levels on ``[-1, 1]``) under the
    shipped ``digits`` model's unconditional denoiser (or ``denoiser``, on the model's path), by
    both routes, each with the same uniform dequantisation (bin width :data:`DIGITS_BIN_WIDTH`
    ``= 2/16``, :func:`dequantise` with the generator of ``seed``):

    * ``pf_ode``: :func:`log_prob` (``method``, ``probes``, ``rtol``, ``atol``) from
      ``t_min`` (where the logSNR is ``logsnr_min``) to the path's start;
    * ``elbo``: :func:`elbo` over ``[t_min, 1]`` with ``elbo_samples`` draws per image, an upper
      bound on the negative log-likelihood of the model's stochastic (reverse-SDE) reading, and ``elbo_se``
      its Monte-Carlo standard error (bits per dimension).

    Each is ``[n]`` bits per dimension (float64), via :func:`bits_per_dim` with the bin width.
    Also returned: ``x`` the dequantised points, ``t_min``, ``bin_width`` and ``uniform``
    (``log2 17``: the bits per dimension of the uniform law on the levels, for scale).
    """
    from . import pretrained

    if not isinstance(images, torch.Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != (1, 8, 8):
        raise ValueError("images must be a [n, 1, 8, 8] tensor")
    model = pretrained.load("digits")
    path = model.path
    D = model.denoiser() if denoiser is None else denoiser
    x = dequantise(images.to(torch.float64), DIGITS_BIN_WIDTH, torch.Generator().manual_seed(seed))
    t_min = float(path.t_from_logsnr(torch.tensor(float(logsnr_min), dtype=torch.float64)))
    d = x[0].numel()
    lp = log_prob(D, path, x, method, t_min=t_min, rtol=rtol, atol=atol, probes=probes,
                  generator=torch.Generator().manual_seed(seed + 1))
    e = elbo(D, path, x, samples=elbo_samples, t_min=t_min, generator=torch.Generator().manual_seed(seed + 2))
    return dict(pf_ode=bits_per_dim(lp, d, DIGITS_BIN_WIDTH),
                elbo=bits_per_dim(-e["total"], d, DIGITS_BIN_WIDTH),
                elbo_se=e["total_se"] / (d * math.log(2.0)), x=x, t_min=t_min,
                bin_width=DIGITS_BIN_WIDTH, uniform=math.log2(17))
