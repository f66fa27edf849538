"""An adaptive Runge-Kutta solve of the probability-flow ODE through ``torchdiffeq``.

``torchdiffeq.odeint`` (Chen et al. 2018) with the Dormand-Prince 5(4) pair (``dopri5``;
Dormand & Prince 1980) picks its own steps for the tolerances ``rtol``/``atol``; the step
control reads error norms on the host, so this solver (unlike the others) synchronises with an
accelerator at every step.
"""

from __future__ import annotations

import torch

from ..views import from_x0
from ._common import schedule
from .registry import register

__all__ = ["adaptive"]

METHODS = ("dopri5", "bosh3", "fehlberg2", "adaptive_heun", "dopri8")


@register("adaptive", affine=False)
def adaptive(denoiser, path, x: torch.Tensor, ts: torch.Tensor, *, rtol: float = 1e-5,
             atol: float = 1e-5, method: str = "dopri5", generator=None, noise=None,
             callback=None) -> torch.Tensor:
    """Integrate the probability-flow ODE adaptively from ``ts[0]`` to the last grid point before
    ``t = 0``, then take the denoising step ``x = D(x, t_prev)`` onto ``t = 0``.

    The ODE is solved in the half logSNR ``lam = log(alpha / sigma)``:
    ``dx/dlam = u(x, t) / (dlam/dt)`` with ``u`` the probability-flow velocity of ``D``
    (:mod:`diffkit.views`). In ``lam`` the ``sqrt(t)`` singularity of VP paths at ``t = 0`` is gone,
    and the solver's steps past the last output point (``torchdiffeq`` steps over it and
    interpolates) stay at valid times ``t > 0``.

    Only the grid's first and last points matter (its inner points are where the trajectory is
    reported). The number of denoiser calls is whatever the step control needed; it is counted by
    :func:`diffkit.sample`. ``callback`` gets ``x0 = None`` at the points the ODE solve passes.
    """
    from torchdiffeq import odeint

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if not (rtol > 0 and atol > 0):
        raise ValueError(f"rtol and atol must be positive; got {rtol}, {atol}")
    S = schedule(path, ts, x)
    end = S.steps - 1 if S.ends_at_data else S.steps

    def derivative(lam: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        t = path.t_from_logsnr(2.0 * lam).clamp(max=1.0)
        u = from_x0("velocity", denoiser(y, t), y, t, path)
        return u / (0.5 * path.dlogsnr(t))

    if end > 0:
        index = list(range(end + 1)) if callback is not None else [0, end]
        lam_out = torch.tensor([S.lam[j] for j in index], dtype=x.dtype, device=x.device)
        sol = odeint(derivative, x, lam_out, rtol=float(rtol), atol=float(atol), method=method)
        if callback is not None:
            for j in range(end):
                callback(j, sol[j], None)
        x = sol[-1]
    if S.ends_at_data:
        x0 = denoiser(x, S.times[end])
        if callback is not None:
            callback(end, x, x0)
        x = x0
    return x
