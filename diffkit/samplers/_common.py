"""What every solver needs before its loop: the grid's coefficients and a noise source.

All coefficients are computed once, in float64 on the CPU, from the grid, and kept as python
floats: inside the loop a step is a few tensor operations with python-float weights, so it never
synchronises with an accelerator, and its dtype and device are those of the state.

Building them costs a few dozen small tensor operations, more than a short loop at batch 1; so
they are memoised per (path object, grid values, dtype, device) in a small bounded cache. The
cached values are pure functions of that key (a path is not mutated after it is built).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable

import torch

from ..paths import GaussianPath

__all__ = ["Schedule", "schedule", "Noise", "one_minus_ratio", "velocity_weights", "memo",
           "combine"]

_CACHE: dict = {}
_CACHE_SIZE = 256
_LOCK = threading.Lock()  # the demo hub serves requests from several threads


def memo(kind: str, path, ts: torch.Tensor, extra, build):
    """``build()``, memoised under ``(kind, path, grid values, extra)``. The path is kept alive with
    the entry, so its ``id`` cannot be reused while the entry exists."""
    key = (kind, id(path), ts.detach().cpu().numpy().tobytes(), extra)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit[1]
    value = build()
    with _LOCK:
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = (path, value)
    return value


@dataclass(frozen=True)
class Schedule:
    """A grid ``ts`` (float64, CPU, decreasing) and the path's coefficients at its points.

    ``t[i]`` is ``ts[i]`` as a python float and ``times[i]`` the same as a 0-dim tensor of the
    state's dtype and device: what the denoiser receives. ``lam`` is the half logSNR ``log(alpha / sigma)`` (``+inf`` at ``t = 0``),
    the time variable of DPM-Solver (Lu et al. 2022a, Sec. 3.1).
    """

    ts: torch.Tensor
    t: tuple
    times: tuple
    alpha: tuple
    sigma: tuple
    dalpha: tuple
    dsigma: tuple
    lam: tuple

    @property
    def steps(self) -> int:
        return len(self.alpha) - 1

    @property
    def ends_at_data(self) -> bool:
        """True when the last grid point is ``t = 0``: the last step is then the denoising step
        ``x = D(x, t_prev)``, so that the denoiser is never evaluated at ``t = 0``."""
        return self.sigma[-1] == 0.0

    def is_final(self, i: int) -> bool:
        """Whether the step from ``ts[i]`` lands on ``t = 0``."""
        return i == self.steps - 1 and self.ends_at_data


def schedule(path: GaussianPath, ts: torch.Tensor, like: torch.Tensor) -> Schedule:
    """Coefficients of ``path`` on the grid ``ts``, with the times cast like ``like`` (memoised)."""
    ts = ts.detach().to(device="cpu", dtype=torch.float64)
    return memo("schedule", path, ts, (like.dtype, like.device),
                lambda: _schedule(path, ts, like))


def _schedule(path: GaussianPath, ts: torch.Tensor, like: torch.Tensor) -> Schedule:
    with torch.no_grad():
        alpha, sigma = path.alpha(ts), path.sigma(ts)
        inner = ts > 0  # the derivatives are singular at t = 0 on some paths; never used there
        safe = torch.where(inner, ts, torch.ones_like(ts))
        dalpha = torch.where(inner, path.dalpha(safe), torch.zeros_like(ts))
        dsigma = torch.where(inner, path.dsigma(safe), torch.zeros_like(ts))
        lam = torch.log(alpha) - torch.log(sigma)
    times = tuple(ts.to(dtype=like.dtype, device=like.device).unbind(0))
    floats = (tuple(v.tolist()) for v in (ts, alpha, sigma, dalpha, dsigma, lam))
    t, alpha, sigma, dalpha, dsigma, lam = floats
    return Schedule(ts, t, times, alpha, sigma, dalpha, dsigma, lam)


def one_minus_ratio(lam_t: float, lam_s: float) -> float:
    """``1 - (alpha_t sigma_s / (alpha_s sigma_t))^2 = 1 - exp(2 (lam_t - lam_s))`` for
    ``lam_t < lam_s`` (half logSNRs), without cancellation; 1 when ``s`` is the data."""
    return -math.expm1(2.0 * (lam_t - lam_s))


class Noise:
    """The run's source of standard normal draws, counted in order ``k = 0, 1, ...``.

    By default ``torch.randn`` from ``generator`` (the only randomness of a run); a user
    ``noise(k, x)`` replaces the draws (to replay a run, or to read off a sampler's exact law).
    """

    def __init__(self, generator: torch.Generator | None = None,
                 noise: Callable[[int, torch.Tensor], torch.Tensor] | None = None):
        self.generator, self.fn, self.k = generator, noise, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.fn is None:
            z = torch.randn(x.shape, generator=self.generator, dtype=x.dtype, device=x.device)
        else:
            z = self.fn(self.k, x)
        self.k += 1
        return z


def velocity_weights(path: GaussianPath, t: torch.Tensor) -> tuple[list, list]:
    """Weights ``(on x, on x0)`` of the probability-flow velocity at the times ``t > 0``:
    ``u(x, t) = w_x x + w_0 D(x, t)``.

    Read off :func:`diffkit.views.from_x0` (where the conversion is written once) by feeding it
    the basis ``(x, x0) = (1, 0)`` and ``(0, 1)``: the velocity is linear in ``(x, x0)``.
    """
    t = t.detach().to(device="cpu", dtype=torch.float64).reshape(-1)
    return memo("velocity", path, t, None, lambda: _velocity_weights(path, t))


def _velocity_weights(path: GaussianPath, t: torch.Tensor) -> tuple[list, list]:
    from ..views import from_x0

    x = torch.tensor([1.0, 0.0], dtype=torch.float64).expand(t.shape[0], 2)
    x0 = torch.tensor([0.0, 1.0], dtype=torch.float64).expand(t.shape[0], 2)
    with torch.no_grad():
        u = from_x0("velocity", x0, x, t, path)
    return u[:, 0].tolist(), u[:, 1].tolist()


def combine(x: torch.Tensor, a: float, *terms) -> torch.Tensor:
    """``a x + sum_j b_j y_j`` for ``terms = (y_1, b_1, y_2, b_2, ...)``, in ``1 + len(terms) / 2``
    tensor operations (one new tensor, then in-place accumulation): the per-step arithmetic of
    every solver, kept to the fewest calls because at batch 1 each call's overhead is the cost."""
    out = x.mul(a)
    for j in range(0, len(terms), 2):
        out.add_(terms[j], alpha=terms[j + 1])
    return out


def one_call_loop(denoiser, S: Schedule, x: torch.Tensor, weights, draw: Noise | None = None,
                  callback=None) -> torch.Tensor:
    """The loop of every sampler that makes one denoiser call and one linear update per step.

    At each grid point ``t_i``: ``x0 = D(x, t_i)``; report ``(i, x, x0)`` to ``callback``; on the
    final step onto ``t = 0`` land on ``x = x0``; otherwise ``x <- c_x x + c_0 x0 + c_z z`` with
    ``(c_x, c_0, c_z) = weights(i)`` and ``z`` the next draw of ``draw`` (none when ``c_z = 0``).
    The solvers differ only in ``weights``, where each one's update rule is written.
    """
    for i in range(S.steps):
        x0 = denoiser(x, S.times[i])
        if callback is not None:
            callback(i, x, x0)
        if S.is_final(i):
            x = x0
            continue
        cx, c0, cz = weights(i)
        x = combine(x, cx, x0, c0, draw(x), cz) if cz > 0.0 else combine(x, cx, x0, c0)
    return x

