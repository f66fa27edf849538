"""Exact output laws of samplers run with an exact Gaussian denoiser.

For Gaussian data ``N(m, S)`` the exact denoiser ``D(x, t)`` is affine in ``x``, and every step of
every solver here (but ``adaptive``) is linear in the state, the denoiser output and the injected
standard normal draws. A run is therefore an affine map

    ``x_out = A x_start + B z + b``,  ``z ~ N(0, I)`` (all the run's draws, stacked),

and if ``x_start ~ N(mu, C)`` independently of ``z``, the output law is
``N(A mu + b, A C A^T + B B^T)``: exact, without Monte Carlo. ``A``, ``B`` and ``b`` are read off
one float64 run on a batch made of the zero vector, the unit vectors, and (for the draws) runs
whose ``k``-th draw is a unit vector and whose other draws are zero.
"""

from __future__ import annotations

import torch

from .registry import available, info
from .sample import make_grid, resolve_path

__all__ = ["affine_map", "sampler_law", "sampler_moments"]


def _check_data(data):
    from ..analytic import Gaussian

    if not isinstance(data, Gaussian):
        raise TypeError(f"data must be an analytic.Gaussian (its denoiser is affine); got {type(data).__name__}")


def affine_map(solver: str, path, data, steps: int = 10, grid="logsnr", **options):
    """The run of ``solver`` with ``data``'s exact denoiser as an affine map: ``(A, B, b, ts)`` with
    ``x_out = A x_start + B z + b``; ``A`` is ``[d, d]``, ``B`` is ``[d, K d]`` for ``K`` draws of
    shape ``[d]`` (``[d, 0]`` for a deterministic run), ``b`` is ``[d]``, ``ts`` the grid used."""
    _check_data(data)
    spec = info(solver)
    if not spec.affine:
        affine = ", ".join(n for n in available() if info(n).affine)
        raise ValueError(f"solver {solver!r} is not an affine map of its start; the exact law "
                         f"is defined for {affine}")
    extra = set(options) - set(spec.options)
    if extra:
        raise TypeError(f"solver {solver!r} takes the options {', '.join(spec.options)}; "
                        f"got {', '.join(sorted(extra))}")
    path = resolve_path(path)
    ts = make_grid(grid, steps, path)
    dtype, device, d = data.mean.dtype, data.mean.device, data.dim
    denoiser = data.denoiser(path)

    draws: list[int] = []

    def count(k, x):
        draws.append(k)
        return torch.zeros_like(x)

    with torch.no_grad():
        spec.fn(denoiser, path, torch.zeros(1, d, dtype=dtype, device=device), ts, noise=count,
                **options)
        n_draws = len(draws)
        eye = torch.eye(d, dtype=dtype, device=device)
        rows = 1 + d + n_draws * d
        x = torch.zeros(rows, d, dtype=dtype, device=device)
        x[1:1 + d] = eye

        def inject(k, like):
            z = torch.zeros(rows, d, dtype=dtype, device=device)
            lo = 1 + d + k * d
            z[lo:lo + d] = eye
            return z

        out = spec.fn(denoiser, path, x, ts, noise=inject, **options)
    b = out[0]
    A = (out[1:1 + d] - b).T
    B = (out[1 + d:] - b).T
    return A, B, b, ts


def sampler_moments(solver: str, path, data, steps: int = 10, grid="logsnr", start=None,
                    **options) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact mean and covariance of ``solver``'s output (see :func:`sampler_law`), also when
    the law is degenerate (e.g. one deterministic step from ``t = 1`` on the ``linear`` path sends
    every start to the data mean): ``A mu + b`` and ``A C A^T + B B^T`` for ``x_start ~ N(mu, C)``.
    ``w2_gaussian(data, sampler_moments(...))`` is then the exact W2 in every case."""
    from ..analytic import Gaussian

    A, B, b, ts = affine_map(solver, path, data, steps, grid, **options)
    if start is None:
        start = data.marginal(float(ts[0]), resolve_path(path))
    if not isinstance(start, Gaussian):
        raise TypeError(f"start must be an analytic.Gaussian; got {type(start).__name__}")
    mu, C = start.mean.to(A), start.cov.to(A)
    cov = A @ C @ A.T + B @ B.T
    return A @ mu + b, 0.5 * (cov + cov.T)


def sampler_law(solver: str, path, data, steps: int = 10, grid="logsnr", start=None, **options):
    """The exact law (an :class:`analytic.Gaussian`) of ``solver``'s output when it is run with the
    exact denoiser of the Gaussian ``data`` from ``x_start ~ start``.

    ``start`` defaults to the exact marginal of ``data`` at ``ts[0]``: the exact probability-flow map
    would then return ``data`` itself, so ``w2_gaussian(law, data)`` is the solver's pure
    discretisation error (including the final jump from the last grid point to ``t = 0``).
    Deterministic solvers and the stochastic ones (``ddpm``, ``ddim`` with ``eta``,
    ``euler-maruyama``, ``pc``, ``heun`` with ``churn``) are covered; ``adaptive`` is not (its step
    sizes depend on the state).
    """
    from ..analytic import Gaussian

    return Gaussian(*sampler_moments(solver, path, data, steps, grid, start, **options))
