"""The three training losses as one weighted denoising (x0) loss.

Every view trains the same field. Write the model as a denoiser ``D`` (any other prediction is a
conversion of it, :mod:`diffkit.views`), draw ``t``, ``x0`` and ``eps``, and set
``x_t = alpha x0 + sigma eps``. Each view's loss is then

    ``L = E_{t, x0, eps} [ w(t) ||D(x_t, t) - x0||^2 ]``

with its own weight ``w(t)``. Because the weight is positive and does not depend on the model, the
minimiser at every ``t`` is the same: ``D(x, t) = E[x0 | x_t = x]``. The views differ only in how they
spread the model's capacity over noise levels.

Derivations (``lambda = logsnr``, ``SNR = exp(lambda) = alpha^2 / sigma^2``):

* **variational** (Kingma et al. 2021, VDM, eq. 17): the continuous-time diffusion term of the
  negative ELBO is ``-1/2 E_t[SNR'(t) ||x0 - D||^2]``, so ``w(t) = -1/2 dSNR/dt = -1/2 lambda' e^lambda``.
  In the noise parameterisation ``eps_hat = (x - alpha D) / sigma`` one has
  ``||eps - eps_hat||^2 = SNR ||x0 - D||^2``, giving DDPM's ``-1/2 lambda' ||eps - eps_hat||^2``
  (Ho et al. 2020 drop the factor ``-lambda'/2``: their "simple" loss is ``w = SNR``).
* **score** (denoising score matching, Vincent 2011; Song et al. 2021, eq. 7 with
  ``lambda(t) = sigma^2``): ``sigma^2 ||s_theta - grad log q(x_t | x0)||^2`` with
  ``s_theta = -(x - alpha D) / sigma^2`` and ``grad log q = -(x - alpha x0) / sigma^2`` gives
  ``s_theta - grad log q = (alpha / sigma^2)(D - x0)``, so ``w(t) = alpha^2 / sigma^2 = SNR``.
* **flow** (conditional flow matching, Lipman et al. 2022, eq. 9): ``||u_theta - u||^2`` with
  ``u = alpha' x0 + sigma' eps`` and ``u_theta = alpha' D + sigma' (x - alpha D) / sigma`` gives
  ``u_theta - u = (alpha' - alpha sigma' / sigma)(D - x0)``, so ``w(t) = (alpha' - alpha sigma'/sigma)^2
  = (alpha lambda' / 2)^2``; on the ``linear`` path ``w = 1 / t^2``.
"""

from __future__ import annotations

import torch

from .paths import LOGSNR_MAX, as_time, expand, get
from .views import from_x0

__all__ = ["VIEWS", "weight", "x0_loss", "native_loss", "draw"]

VIEWS = ("variational", "score", "flow")
_NATIVE = {"variational": "eps", "score": "score", "flow": "velocity"}


def _check_view(view: str) -> None:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}; got {view!r}")


def weight(view: str, t, path) -> torch.Tensor:
    """The weight ``w(t)`` of ``view``'s loss written as an x0 loss (see the module docstring)."""
    _check_view(view)
    path = get(path)
    t = as_time(t)
    if view == "variational":
        return -0.5 * path.dlogsnr(t) * torch.exp(path.logsnr(t))
    if view == "score":
        return torch.exp(path.logsnr(t))
    a, s, da, ds = path.alpha(t), path.sigma(t), path.dalpha(t), path.dsigma(t)
    return (da - a * ds / s) ** 2


def draw(x0: torch.Tensor, path, generator: torch.Generator | None = None, t_min=None, t_max=1.0):
    """Draw ``t ~ U[t_min, t_max]`` (one per row) and ``eps ~ N(0, I)``; return ``(t, eps, x_t)``.

    ``t_min`` defaults to where the path's logSNR reaches ``LOGSNR_MAX`` (the weights of the
    score and variational views grow without bound as ``t -> 0``).
    """
    path = get(path)
    if t_min is None:
        t_min = float(path.t_from_logsnr(LOGSNR_MAX))
    n = x0.shape[0]
    u = torch.rand(n, generator=generator, dtype=x0.dtype, device=x0.device)
    t = t_min + (t_max - t_min) * u
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    x_t = expand(path.alpha(t), x0) * x0 + expand(path.sigma(t), x0) * eps
    return t, eps, x_t


def _sum_per_row(e: torch.Tensor) -> torch.Tensor:
    return e.reshape(e.shape[0], -1).pow(2).sum(1)


def x0_loss(denoiser, x0: torch.Tensor, path, view: str, t=None, eps=None,
            generator: torch.Generator | None = None, t_min=None, t_max=1.0) -> torch.Tensor:
    """Monte-Carlo estimate of ``E[w(t) ||D(x_t, t) - x0||^2]`` for ``view`` (mean over the batch).

    Pass ``t [batch]`` and ``eps`` to evaluate at fixed draws, or let them be drawn from
    ``generator`` with ``t ~ U[t_min, t_max]``.
    """
    _check_view(view)
    path = get(path)
    if t is None or eps is None:
        t, eps, x_t = draw(x0, path, generator, t_min, t_max)
    else:
        t = as_time(t, like=x0)
        x_t = expand(path.alpha(t), x0) * x0 + expand(path.sigma(t), x0) * eps
    err = _sum_per_row(denoiser(x_t, t) - x0)
    return (weight(view, t, path) * err).mean()


def native_loss(denoiser, x0: torch.Tensor, path, view: str, t, eps) -> torch.Tensor:
    """The same loss in the view's own parameterisation, for checking the identity above:
    DDPM's ``-1/2 lambda' ||eps - eps_hat||^2``, DSM's ``sigma^2 ||s_theta - grad log q||^2`` and
    CFM's ``||u_theta - u||^2`` (mean over the batch)."""
    _check_view(view)
    path = get(path)
    t = as_time(t, like=x0)
    a, s = expand(path.alpha(t), x0), expand(path.sigma(t), x0)
    x_t = a * x0 + s * eps
    kind = _NATIVE[view]
    pred = from_x0(kind, denoiser(x_t, t), x_t, t, path)
    target = from_x0(kind, x0, x_t, t, path)
    err = _sum_per_row(pred - target)
    if view == "variational":
        return (-0.5 * path.dlogsnr(t) * err).mean()
    if view == "score":
        return (path.sigma(t) ** 2 * err).mean()
    return err.mean()
