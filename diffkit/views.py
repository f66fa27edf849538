"""One field, several names: conversions between predictions on a Gaussian path.

On a path ``x_t = alpha x0 + sigma eps`` a network may predict any of

============  ====================================================================================
``x0``        the denoiser ``D(x, t) = E[x0 | x_t = x]``, the engine's common currency
``eps``       the noise, ``eps = (x - alpha x0) / sigma`` (Ho et al. 2020)
``score``     ``grad log p_t(x) = -eps / sigma`` (Tweedie: ``x0 = (x + sigma^2 score) / alpha``;
              Efron 2011, Song et al. 2021)
``v``         ``v = alpha eps - sigma x0`` (Salimans & Ho 2022, Sec. 4)
``velocity``  the flow-matching / probability-flow velocity ``u = alpha' x0 + sigma' eps = dx/dt``
              (Lipman et al. 2022; Liu et al. 2022)
============  ====================================================================================

Each is an affine function of ``x0`` given ``x``, so every conversion goes through ``x0``: the map
*to* ``x0`` and the map *from* ``x0`` are each written once below, for every kind.
"""

from __future__ import annotations

from typing import Callable

import torch

from .paths import GaussianPath, as_time, expand, get

__all__ = ["KINDS", "to_x0", "from_x0", "convert", "as_denoiser", "Denoiser"]

KINDS = ("x0", "eps", "score", "v", "velocity")

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_kind(kind: str, name: str = "kind") -> None:
    if kind not in KINDS:
        raise ValueError(f"{name} must be one of {', '.join(KINDS)}; got {kind!r}")


def _coefs(x: torch.Tensor, t, path: GaussianPath, derivatives: bool = False):
    t = as_time(t, like=x)
    a, s = expand(path.alpha(t), x), expand(path.sigma(t), x)
    if not derivatives:
        return a, s
    return a, s, expand(path.dalpha(t), x), expand(path.dsigma(t), x)


def from_x0(kind: str, x0: torch.Tensor, x: torch.Tensor, t, path) -> torch.Tensor:
    """The prediction of type ``kind`` that corresponds to the denoised ``x0`` at ``(x, t)``."""
    _check_kind(kind)
    path = get(path)
    if kind == "x0":
        return x0
    if kind == "velocity":
        a, s, da, ds = _coefs(x, t, path, derivatives=True)
        return da * x0 + ds * (x - a * x0) / s
    a, s = _coefs(x, t, path)
    eps = (x - a * x0) / s
    if kind == "eps":
        return eps
    if kind == "score":
        return -eps / s
    return a * eps - s * x0  # "v"


def to_x0(kind: str, pred: torch.Tensor, x: torch.Tensor, t, path) -> torch.Tensor:
    """The denoised ``x0`` implied by a prediction of type ``kind`` at ``(x, t)``."""
    _check_kind(kind)
    path = get(path)
    if kind == "x0":
        return pred
    if kind == "velocity":
        # u = a' x0 + s' (x - a x0) / s  =>  x0 = (s u - s' x) / (s a' - a s')
        a, s, da, ds = _coefs(x, t, path, derivatives=True)
        return (s * pred - ds * x) / (s * da - a * ds)
    a, s = _coefs(x, t, path)
    if kind == "eps":
        return (x - s * pred) / a
    if kind == "score":
        return (x + s * s * pred) / a  # Tweedie's formula
    # "v": a x - s v = (a^2 + s^2) x0
    return (a * x - s * pred) / (a * a + s * s)


def convert(pred: torch.Tensor, x: torch.Tensor, t, path, src: str, dst: str) -> torch.Tensor:
    """Convert a prediction of type ``src`` into one of type ``dst`` (through ``x0``)."""
    _check_kind(src, "src")
    _check_kind(dst, "dst")
    if src == dst:
        return pred
    return from_x0(dst, to_x0(src, pred, x, t, path), x, t, path)


def as_denoiser(net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], kind: str, path) -> Denoiser:
    """Wrap ``net(x, t)``, which predicts ``kind``, into a denoiser ``D(x, t)``.

    A sampler never asks which parameterisation a model used: it only ever calls ``D``.
    """
    _check_kind(kind)
    path = get(path)
    if kind == "x0":
        return net

    def denoiser(x: torch.Tensor, t) -> torch.Tensor:
        return to_x0(kind, net(x, t), x, t, path)

    denoiser.kind = kind  # type: ignore[attr-defined]
    denoiser.net = net  # type: ignore[attr-defined]
    return denoiser
