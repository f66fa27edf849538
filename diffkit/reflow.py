"""Rectified flow: couplings, reflow, and how straight a flow's paths are (Liu, Gong & Liu 2022,
"Flow Straight and Fast").

Flow matching on the ``linear`` path (``x_t = (1 - t) x0 + t x1``) trains a velocity ``v(x, t)``
onto ``x1 - x0`` for pairs ``(x0, x1)`` of a *coupling*. With independent pairs (data, noise) the
result is *1-rectified flow*: its probability-flow ODE moves noise to data along curved paths,
because the independent coupling's straight lines cross. **Reflow** draws new pairs from the flow
itself, ``x0 = ODE(x1)`` (:func:`couple`), and trains again on them (:func:`fit_coupling`): the
2-rectified flow keeps the marginals and its paths are straighter (Liu et al. 2022, Thm. 3.3 and
3.7), so fewer Euler steps reach the same accuracy.

* :func:`couple`: the deterministic coupling ``(ODE(x1), x1)`` of a denoiser, ``x1`` from the prior;
* :func:`fit_coupling`: flow matching on given pairs (the flow loss of :mod:`diffkit.losses`
  evaluated with ``eps = x1``), returning a denoiser for :func:`diffkit.sample`;
* :func:`straightness`: Liu et al.'s ``S = int_0^1 E ||(x1 - x0) - dx_t/dt||^2 dt`` of a
  trajectory, zero exactly when every path is a straight line run at constant speed.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from . import paths as _paths
from .losses import x0_loss
from .samplers import sample
from .train import LearnedDenoiser, train
from .views import as_denoiser

__all__ = ["couple", "fit_coupling", "straightness"]


def couple(denoiser, n: int, *, path="linear", solver: str = "rk4", steps: int = 32, grid="uniform",
           generator: Optional[torch.Generator] = None, dtype=torch.float32, dim: int = 2):
    """``(x0, x1)``: ``n`` prior draws ``x1`` (``[n, dim]``, from ``generator``) and where the
    deterministic ``solver`` takes each of them, ``x0 = ODE(x1)``, with ``denoiser`` on ``path``.
    ``solver`` must be deterministic (an ODE solver): the pairs are then a deterministic coupling."""
    from .samplers import info

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    if info(solver).stochastic:
        raise ValueError(f"solver must be deterministic (an ODE solver) to define a coupling; got {solver!r}")
    path = _paths.get(path)
    x1 = path.prior((n, dim), generator=generator, dtype=dtype)
    x0 = sample(denoiser, path, x1, solver=solver, steps=steps, grid=grid).x
    return x0, x1


def fit_coupling(model: nn.Module, x0: Tensor, x1: Tensor, *, steps: int = 2000, batch_size: int = 256,
                 lr: float = 1e-3, t_min: float = 1e-3, generator: Optional[torch.Generator] = None,
                 ema_decay: Optional[float] = 0.999, progress: bool = True, desc: str = "reflow") -> LearnedDenoiser:
    """Flow matching on the pairs ``(x0[i], x1[i])``: ``model(x, t)`` predicts the velocity on the
    ``linear`` path and is trained onto ``x1 - x0`` at ``x_t = (1 - t) x0 + t x1``, ``t ~ U[t_min, 1]``.

    This is :func:`diffkit.losses.x0_loss` with the ``flow`` weight and ``eps = x1`` (on the linear
    path ``w = 1 / t^2`` and ``||v_theta - (x1 - x0)||^2 = w ||D_theta - x0||^2``), run by
    :func:`diffkit.train.train`. Returns the EMA network's denoiser (velocity target, linear path).
    """
    if not (isinstance(x0, Tensor) and isinstance(x1, Tensor)) or x0.shape != x1.shape or x0.ndim < 2:
        raise ValueError("x0 and x1 must be tensors of one shape [N, ...] (one pair per row); got "
                         f"{getattr(x0, 'shape', type(x0))} and {getattr(x1, 'shape', type(x1))}")
    if not 0.0 < float(t_min) < 1.0:
        raise ValueError(f"t_min must be in (0, 1); got {t_min!r}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("model has no parameter that requires grad (an EMA copy is frozen: call "
                         "model.requires_grad_(True) first)")
    path = _paths.get("linear")
    param = next(model.parameters())
    x0 = x0.detach().to(device=param.device, dtype=param.dtype)
    x1 = x1.detach().to(device=param.device, dtype=param.dtype)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)

    def loss_fn(m):
        idx = torch.randint(x0.shape[0], (int(batch_size),), generator=gen)
        t = t_min + (1.0 - t_min) * torch.rand(int(batch_size), generator=gen, dtype=x0.dtype)
        return x0_loss(as_denoiser(m, "velocity", path), x0[idx], path, "flow", t=t, eps=x1[idx])

    res = train(model, loss_fn, steps, lr=lr, ema_decay=ema_decay, progress=progress, desc=desc)
    return LearnedDenoiser(res.ema if res.ema is not None else res.model, "velocity", path, result=res)


def straightness(xs: Tensor, ts: Tensor) -> float:
    """Liu et al.'s straightness ``S = int E ||(x_end - x_start) / (t_start - t_end) - dx/dt||^2 dt``
    of trajectories ``xs [T+1, n, ...]`` at the times ``ts [T+1]`` (``SampleResult.xs`` and ``.ts``),
    with ``dx/dt`` read off each step as a finite difference; divided by the time spanned, so that
    it is the mean squared deviation of the step velocities from the straight line's.

    Zero exactly when every trajectory moves along a straight line at constant speed.
    """
    if xs.ndim < 3 or ts.ndim != 1 or xs.shape[0] != ts.shape[0] or ts.shape[0] < 2:
        raise ValueError(f"need xs [T+1, n, ...] and ts [T+1] with T >= 1; got {tuple(xs.shape)} and {tuple(ts.shape)}")
    xs, ts = xs.to(torch.float64), ts.to(torch.float64)
    dt = ts[1:] - ts[:-1]                                   # negative: time runs from 1 to 0
    if not bool((dt < 0).all()):
        raise ValueError("ts must be strictly decreasing")
    shape = (-1,) + (1,) * (xs.ndim - 1)
    step_v = (xs[1:] - xs[:-1]) / dt.reshape(shape)
    line_v = (xs[-1] - xs[0]) / (ts[-1] - ts[0])
    dev = (step_v - line_v).flatten(2).pow(2).sum(-1).mean(-1)          # [T]
    return float((dev * -dt).sum() / (ts[0] - ts[-1]))
