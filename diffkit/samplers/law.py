"""Reading a run as an affine map: the generic half of the exact laws of samplers.

With an affine denoiser ``D(x, t) = J_t x + c_t`` (the exact denoiser of Gaussian data, a guided
version of it, a posterior one) every step of every solver here but ``adaptive`` is linear in the
state, the denoiser output and the injected standard normal draws. A run is then an affine map

    ``x_out = A x_start + B z + b``,  ``z ~ N(0, I)`` (all the run's draws, stacked),

and if ``x_start ~ N(mu, C)`` independently of ``z``, the output law is
``N(A mu + b, A C A^T + B B^T)`` (:func:`push_forward`): exact, without Monte Carlo. ``A``, ``B``
and ``b`` are read off one float64 run (:func:`read_affine`) on a batch made of the zero vector,
the unit vectors, and (for the draws) rows whose ``k``-th draw is a unit vector and whose other
draws are zero.

This module knows nothing about where the affine denoiser comes from: the laws of Gaussian data
(samplers', guided runs', inverse-problem methods') are built on it in :mod:`diffkit.analytic`.
"""

from __future__ import annotations

from typing import Callable

import torch

from .registry import available, info
from .sample import make_grid, resolve_path

__all__ = ["read_affine", "solver_affine_map", "push_forward"]


def read_affine(run: Callable, dim: int, dtype=torch.float64, device=None):
    """``(A, B, b)`` of an affine run ``run(x_start, noise) -> x_out`` on ``[n, dim]`` batches,
    where ``noise(k, x)`` supplies the run's ``k``-th standard normal draw (shaped like ``x``).

    ``A`` is ``[dim, dim]``, ``B`` is ``[dim, K dim]`` for ``K`` draws (``[dim, 0]`` for a
    deterministic run), ``b`` is ``[dim]``. The run must be affine in its start and its draws,
    must draw the same number of times whatever its input, and must not mix batch rows.
    """
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive int; got {dim!r}")
    draws: list[int] = []

    def count(k, x):
        draws.append(k)
        return torch.zeros_like(x)

    with torch.no_grad():
        run(torch.zeros(1, dim, dtype=dtype, device=device), count)
    n_draws = len(draws)
    eye = torch.eye(dim, dtype=dtype, device=device)
    rows = 1 + dim + n_draws * dim
    x = torch.zeros(rows, dim, dtype=dtype, device=device)
    x[1:1 + dim] = eye

    def inject(k, like):
        if k >= n_draws:
            raise ValueError("the run drew more noise than on its first reading: not a fixed affine map")
        z = torch.zeros(rows, dim, dtype=dtype, device=device)
        lo = 1 + dim + k * dim
        z[lo:lo + dim] = eye
        return z

    with torch.no_grad():
        out = run(x, inject)
    b = out[0]
    return (out[1:1 + dim] - b).T, (out[1 + dim:] - b).T, b


def solver_affine_map(solver: str, path, denoiser: Callable, dim: int, steps: int = 10,
                      grid="logsnr", dtype=torch.float64, device=None, **options):
    """The run of a registered ``solver`` with an affine ``denoiser`` on ``[n, dim]`` states as an
    affine map: ``(A, B, b, ts)``, ``ts`` the grid used (see :func:`read_affine`)."""
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

    def run(x, noise):
        return spec.fn(denoiser, path, x, ts, noise=noise, **options)

    A, B, b = read_affine(run, dim, dtype, device)
    return A, B, b, ts


def push_forward(A: torch.Tensor, B: torch.Tensor, b: torch.Tensor, mean: torch.Tensor,
                 cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of ``A x + B z + b`` for ``x ~ N(mean, cov)`` and ``z ~ N(0, I)``
    independent: ``(A mean + b, A cov A^T + B B^T)`` (symmetrised; possibly singular)."""
    mean, cov = mean.to(A), cov.to(A)
    out = A @ cov @ A.T + B @ B.T
    return A @ mean + b, 0.5 * (out + out.T)
