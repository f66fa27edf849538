"""An adaptive Runge-Kutta solve of the probability-flow ODE through ``torchdiffeq``.

``torchdiffeq.odeint`` (Chen et al. 2018) with the Dormand-Prince 5(4) pair (``dopri5``;
Dormand & Prince 1980) picks its own steps for the tolerances ``rtol``/``atol``; the step
control reads error norms on the host, so this solver (unlike the others) synchronises with an
accelerator at every step.
"""

from __future__ import annotations

import torch

from .. import _checks
from ..views import from_x0
from ._common import schedule
from .registry import register

__all__ = ["adaptive"]

METHODS = ("dopri5", "bosh3", "fehlberg2", "adaptive_heun", "dopri8")

#: the allowed range of ``rtol`` and ``atol``, and the most accepted steps between two reported
#: grid points: a bound on the work of one run (a tolerance the state's dtype cannot meet stops
#: there with a ``ValueError`` instead of running on).
TOLERANCE_RANGE = (1e-12, 1.0)
MAX_STEPS_PER_INTERVAL = 10_000


@register("adaptive", affine=False)
def adaptive(denoiser, path, x: torch.Tensor, ts: torch.Tensor, *, rtol: float = 1e-5,
             atol: float = 1e-5, method: str = "dopri5", generator=None, noise=None,
             callback=None) -> torch.Tensor:
    """Integrate the probability-flow ODE adaptively from ``ts[0]`` to the last grid point before
    ``t = 0``, then take the denoising step ``x = D(x, t_prev)`` onto ``t = 0``.

    The ODE is solved in the half logSNR ``lam = log(alpha / sigma)``:
    ``dx/dlam = u(x, t) / (dlam/dt)`` with ``u`` the probability-flow velocity of ``D``
    (:mod:`diffkit.views`). In ``lam`` the ``sqrt(t)`` singularity of VP paths at ``t = 0`` is gone.

    No step passes the last output point: it is given to ``torchdiffeq`` as a prescribed step end
    (``step_t``), so the step that would cross it is shortened to land on it. Without that, a step
    of ``dopri5`` may overshoot and be interpolated back; where the field is exactly zero (data
    ``N(0, I)`` on a variance-preserving path, whose marginals are all ``N(0, I)``) the error
    estimate is 0, each step grows tenfold, and the overshoot reaches a logSNR whose time is 0 in
    floating point, where the velocity is ``0 / 0``; the solve then failed with "underflow in dt".
    The field is also never evaluated outside the solved range: its time is clamped to it (only
    ``torchdiffeq``'s probe for the first step size looks beyond).

    Only the grid's first and last points matter (its inner points are where the trajectory is
    reported). The number of denoiser calls is whatever the step control needed; it is counted by
    :func:`diffkit.sample`. ``callback`` gets ``x0 = None`` at the points the ODE solve passes.
    """
    from torchdiffeq import odeint

    _checks.choice("method", method, METHODS)
    rtol = _checks.real("rtol", rtol, *TOLERANCE_RANGE)
    atol = _checks.real("atol", atol, *TOLERANCE_RANGE)
    S = schedule(path, ts, x)
    end = S.steps - 1 if S.ends_at_data else S.steps
    t_lo, t_hi = S.t[end], S.t[0]

    def derivative(lam: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        t = path.t_from_logsnr(2.0 * lam).clamp(min=t_lo, max=t_hi)
        u = from_x0("velocity", denoiser(y, t), y, t, path)
        return u / (0.5 * path.dlogsnr(t))

    if end > 0:
        index = list(range(end + 1)) if callback is not None else [0, end]
        lam_out = torch.tensor([S.lam[j] for j in index], dtype=x.dtype, device=x.device)
        options = dict(step_t=torch.tensor([S.lam[end]], dtype=torch.float64),
                       max_num_steps=MAX_STEPS_PER_INTERVAL)
        try:
            sol = odeint(derivative, x, lam_out, rtol=rtol, atol=atol, method=method,
                         options=options)
        except AssertionError as exc:  # torchdiffeq's step control gave up
            raise ValueError(f"the adaptive solve stopped ({exc}): rtol={rtol:g} and atol={atol:g} "
                             f"may be too tight for {x.dtype}, or the denoiser returned non-finite "
                             f"values") from None
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
