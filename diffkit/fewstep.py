"""Few-step generation: flow maps and consistency models distilled from a teacher flow.

The probability-flow ODE of a teacher (here the exact flow of a Gaussian mixture) defines a *flow
map* ``X(x, s, t)``: where the ODE started at ``x`` at time ``s`` is at time ``t``. A network that
learns ``X`` for every pair of times samples in any number of jumps ``t_0 > t_1 > ... > t_K``.

* **Flow map** (:class:`FlowMapNet`, :func:`distill_flow_map`). We use flow-map matching in its
  distillation form (Boffi, Albergo & Vanden-Eijnden 2024, "Flow map matching", the Lagrangian
  map distillation): the teacher's trajectories are integrated once, and ``X_theta(x_s, s, t)`` is
  regressed onto the teacher's ``x_t`` for random pairs ``s > t`` of the same trajectory. We pick it
  over MeanFlow's average-velocity identity (Geng et al. 2025) because here the teacher is exact
  and cheap: regression onto its trajectories has an exact minimiser (the true map) and needs no
  Jacobian-vector products, while MeanFlow's identity is made for training without a teacher.
  The network is written as ``X = x + (t - s) u_theta(x, s, t)`` (an average velocity, as in
  MeanFlow), so ``X(x, s, s) = x`` holds exactly.
* **Consistency model** (:func:`distill_consistency`; Song et al. 2023, consistency distillation):
  ``f_theta(x, t) = X_theta(x, t, t_min)``, the same network with its end time pinned to the data
  end, so the boundary condition ``f(x, t_min) = x`` holds by construction (their eq. 5 does it
  with ``c_skip``/``c_out``). The loss compares ``f_theta(x_{t_{n+1}}, t_{n+1})`` with the
  stop-gradient ``f(x_hat_{t_n}, t_n)``, ``x_hat`` one Heun step of the teacher (their Alg. 2, with
  the target network equal to the online one, the ``mu = 0`` choice of Song & Dhariwal 2023).
  Sampling is their multistep Alg. 1: jump to the data end, re-noise to the next time, jump again.
* **Affine flow maps** (:class:`AffineFlowMap`): for Gaussian data the exact map is affine in
  ``x`` for each pair of times; a model of that form distilled by least squares (the exact
  minimiser of the same regression) recovers it, which the tests check to float64 precision.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from . import _checks
from .nn import sinusoidal_embedding
from .paths import MAX_STEPS, as_time, expand
from .samplers import sample
from .samplers.sample import resolve_path

__all__ = ["FlowMapNet", "AffineFlowMap", "teacher_trajectories", "flow_map_loss", "distill_flow_map",
           "consistency_loss", "distill_consistency", "jump_grid", "flow_map_sample",
           "consistency_sample", "T_MIN", "PRETRAINED_PATH", "load_pretrained", "build_pretrained"]

#: the data end of the few-step models' times (the exact mixture velocity is singular at t = 0)
T_MIN = 1e-3


def jump_grid(path, steps: int, t_min: float = T_MIN, dtype=torch.float64) -> Tensor:
    """``steps + 1`` times uniform in ``t`` from the path's start down to ``t_min``."""
    steps = _checks.integer("steps", steps, 1, MAX_STEPS)
    path = resolve_path(path)
    t_min = _checks.real("t_min", t_min, 0.0, float(path.t_start), low_open=True, high_open=True)
    return torch.linspace(path.t_start, t_min, steps + 1, dtype=dtype)


class FlowMapNet(nn.Module):
    """``X(x, s, t) = x + (t - s) u(x, s, t)`` with ``u`` an MLP of ``x`` and sinusoidal features of
    ``s`` and ``t`` (``time_dim`` each). ``x``: ``[batch, dim]``; ``s``, ``t``: floats, 0-dim or
    ``[batch]``."""

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, time_dim: int = 16):
        super().__init__()
        if min(dim, hidden, depth) < 1 or time_dim < 2 or time_dim % 2:
            raise ValueError(f"dim, hidden, depth must be >= 1 and time_dim even >= 2; got "
                             f"{dim}, {hidden}, {depth}, {time_dim}")
        self.dim, self.hidden, self.depth, self.time_dim = dim, hidden, depth, time_dim
        layers: list[nn.Module] = [nn.Linear(dim + 2 * time_dim, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    @property
    def config(self) -> dict:
        return {"dim": self.dim, "hidden": self.hidden, "depth": self.depth, "time_dim": self.time_dim}

    def forward(self, x: Tensor, s, t) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape [batch, {self.dim}]; got {tuple(x.shape)}")
        s, t = as_time(s, like=x), as_time(t, like=x)
        n = x.shape[0]
        feats = [sinusoidal_embedding(v, self.time_dim).to(x.dtype).expand(n, -1) for v in (s, t)]
        u = self.net(torch.cat([x, *feats], dim=1))
        return x + expand(t - s, x) * u


class AffineFlowMap:
    """An affine map ``X(x, t_i, t_j) = M_ij x + c_ij`` for each pair ``i < j`` of a grid ``times``:
    the form of the exact Gaussian flow map. :meth:`fit` distils it by least squares."""

    def __init__(self, times: Tensor, M: dict, c: dict):
        self.times, self.M, self.c = times, M, c

    @classmethod
    def fit(cls, times: Tensor, xs: Tensor) -> "AffineFlowMap":
        """Least squares of ``x_j`` on ``[x_i, 1]`` over the trajectories ``xs [T+1, n, d]`` at
        ``times [T+1]``, for every pair ``i < j``: the exact minimiser of :func:`flow_map_loss`
        restricted to affine maps."""
        if xs.ndim != 3 or xs.shape[0] != times.shape[0]:
            raise ValueError(f"xs must be [len(times), n, d]; got {tuple(xs.shape)} for {times.shape[0]} times")
        M, c = {}, {}
        ones = torch.ones(xs.shape[1], 1, dtype=xs.dtype)
        for i in range(len(times)):
            design = torch.cat([xs[i], ones], 1)
            for j in range(i + 1, len(times)):
                sol = torch.linalg.lstsq(design, xs[j]).solution          # [d + 1, d]
                M[i, j], c[i, j] = sol[:-1].T, sol[-1]
        return cls(times, M, c)

    def __call__(self, x: Tensor, i: int, j: int) -> Tensor:
        return x @ self.M[i, j].T + self.c[i, j]


def teacher_trajectories(denoiser: Callable, path, n: int, times: Tensor, *, solver: str = "rk4",
                         substeps: int = 8, generator: Optional[torch.Generator] = None,
                         dim: int = 2, dtype=torch.float64) -> Tensor:
    """States ``[len(times), n, dim]`` of the teacher's probability-flow ODE at ``times`` (decreasing,
    ``times[0]`` the path's start), from ``n`` prior draws, integrated by ``solver`` with
    ``substeps`` steps between consecutive times (the teacher's own accuracy)."""
    path = resolve_path(path)
    fine = torch.cat([torch.linspace(float(a), float(b), substeps + 1, dtype=torch.float64)[:-1]
                      for a, b in zip(times[:-1], times[1:])] + [times[-1:].double()])
    x1 = path.prior((n, dim), generator=generator, dtype=dtype)
    res = sample(denoiser, path, x1, solver=solver, grid=fine, return_trajectory=True)
    return res.xs[::substeps]


def flow_map_loss(model: nn.Module, times: Tensor, xs: Tensor, batch_size: int,
                  generator: Optional[torch.Generator] = None) -> Tensor:
    """Flow-map distillation: ``mean |X_theta(x_i, t_i, t_j) - x_j|^2`` over a batch of random
    trajectories and random pairs ``i < j`` of their stored times (``i = j`` never: it is exact)."""
    T = len(times)
    k = torch.randint(xs.shape[1], (batch_size,), generator=generator)
    i = torch.randint(T - 1, (batch_size,), generator=generator)
    j = i + 1 + (torch.rand(batch_size, generator=generator) * (T - 1 - i)).long()
    x_i, x_j = xs[i, k], xs[j, k]
    pred = model(x_i, times[i].to(x_i), times[j].to(x_i))
    return (pred - x_j).pow(2).sum(1).mean()


def distill_flow_map(model: nn.Module, times: Tensor, xs: Tensor, *, steps: int = 3000,
                     batch_size: int = 512, lr: float = 2e-3, seed: int = 0, progress: bool = True):
    """Train ``model`` (a :class:`FlowMapNet`) by :func:`flow_map_loss` with
    :func:`diffkit.train.train`; returns its :class:`~diffkit.train.TrainResult`."""
    from .train import train

    gen = torch.Generator().manual_seed(seed)
    param = next(model.parameters())
    xs, times = xs.to(param), times.to(param)
    return train(model, lambda m: flow_map_loss(m, times, xs, batch_size, gen), steps, lr=lr,
                 ema_decay=0.999, progress=progress, desc="flow map")


def consistency_loss(model: nn.Module, teacher: Callable, path, x0: Tensor, times: Tensor,
                     batch_size: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Consistency distillation (Song et al. 2023, Alg. 2): ``x_{n+1} = alpha x0 + sigma eps`` at a
    random grid time, ``x_hat_n`` one Heun step of ``teacher``'s PF-ODE down to ``t_n``, and
    ``|f(x_{n+1}, t_{n+1}) - sg f(x_hat_n, t_n)|^2`` with ``f(x, t) = X(x, t, times[-1])``."""
    from .views import from_x0

    path = resolve_path(path)
    idx = torch.randint(x0.shape[0], (batch_size,), generator=generator)
    n = torch.randint(len(times) - 1, (batch_size,), generator=generator)
    t_hi, t_lo, end = times[n].to(x0), times[n + 1].to(x0), times[-1].to(x0)
    eps = torch.randn(batch_size, x0.shape[1], generator=generator, dtype=x0.dtype)
    x = expand(path.alpha(t_hi), eps) * x0[idx] + expand(path.sigma(t_hi), eps) * eps
    with torch.no_grad():
        h = expand(t_lo - t_hi, x)
        v1 = from_x0("velocity", teacher(x, t_hi), x, t_hi, path)
        x_e = x + h * v1
        v2 = from_x0("velocity", teacher(x_e, t_lo), x_e, t_lo, path)
        x_hat = x + 0.5 * h * (v1 + v2)
        target = model(x_hat, t_lo, end.expand(batch_size))
    return (model(x, t_hi, end.expand(batch_size)) - target).pow(2).sum(1).mean()


def distill_consistency(model: nn.Module, teacher: Callable, path, x0: Tensor, times: Tensor, *,
                        steps: int = 3000, batch_size: int = 512, lr: float = 2e-3, seed: int = 0,
                        progress: bool = True):
    """Train ``model`` (a :class:`FlowMapNet` used as ``f(x, t) = X(x, t, times[-1])``) by
    :func:`consistency_loss` on data ``x0`` (the teacher's own samples) over the grid ``times``."""
    from .train import train

    gen = torch.Generator().manual_seed(seed)
    param = next(model.parameters())
    x0, times = x0.to(param), times.to(param)
    return train(model, lambda m: consistency_loss(m, teacher, path, x0, times, batch_size, gen), steps,
                 lr=lr, ema_decay=0.999, progress=progress, desc="consistency")


@torch.no_grad()
def flow_map_sample(model: nn.Module, path, x_start: Tensor, steps: int, t_min: float = T_MIN) -> Tensor:
    """``steps`` deterministic jumps of the flow map along :func:`jump_grid`: ``steps`` network calls."""
    ts = jump_grid(path, steps, t_min)
    x = x_start
    for a, b in zip(ts[:-1], ts[1:]):
        x = model(x, float(a), float(b))
    return x


@torch.no_grad()
def consistency_sample(model: nn.Module, path, x_start: Tensor, steps: int, t_min: float = T_MIN,
                       generator: Optional[torch.Generator] = None) -> Tensor:
    """Multistep consistency sampling (Song et al. 2023, Alg. 1) on :func:`jump_grid`: jump from
    ``t_k`` to ``t_min``, re-noise to ``t_{k+1}`` by ``alpha x + sigma z``, repeat; ``steps`` calls."""
    path = resolve_path(path)
    ts = jump_grid(path, steps, t_min)
    x = model(x_start, float(ts[0]), t_min)
    for t in ts[1:-1]:
        tt = as_time(float(t), like=x)
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = model(path.alpha(tt) * x + path.sigma(tt) * z, float(t), t_min)
    return x




# -- the shipped gmm8 few-step models -----------------------------------------------------------

#: the path of the shipped models (rectified flow's: straight-ish paths suit few jumps)
PRETRAINED_PATH = "linear"
CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "fewstep-gmm8"
#: what ``python -m diffkit.fewstep`` trains (the shipped checkpoint's recipe)
RECIPE = dict(jumps=32, trajectories=2048, substeps=4, hidden=128, depth=3, time_dim=16, steps=1500,
              batch_size=256, lr=2e-3, seed=0)


def build_pretrained(out: Path = CHECKPOINT, progress: bool = True, **overrides) -> tuple[Path, Path]:
    """Distil a flow map and a consistency model from the exact gmm8 flow (``RECIPE``) and write them
    as one checkpoint (:func:`diffkit.train.save_checkpoint`): ``python -m diffkit.fewstep``."""
    from .data import toy_mixture
    from .train import save_checkpoint

    cfg = dict(RECIPE, **overrides)
    torch.manual_seed(cfg["seed"])
    mix, path = toy_mixture("gmm8"), PRETRAINED_PATH
    times = jump_grid(path, cfg["jumps"])
    xs = teacher_trajectories(mix.denoiser(path), path, cfg["trajectories"], times, substeps=cfg["substeps"],
                              generator=torch.Generator().manual_seed(cfg["seed"] + 1)).float()
    net = dict(dim=2, hidden=cfg["hidden"], depth=cfg["depth"], time_dim=cfg["time_dim"])
    fm, cm = FlowMapNet(**net), FlowMapNet(**net)
    train_args = dict(steps=cfg["steps"], batch_size=cfg["batch_size"], lr=cfg["lr"], seed=cfg["seed"],
                      progress=progress)
    res_fm = distill_flow_map(fm, times, xs, **train_args)
    res_cm = distill_consistency(cm, mix.denoiser(path), path, xs[-1], times, **train_args)
    both = nn.ModuleDict({"flow_map": res_fm.ema, "consistency": res_cm.ema})
    meta = dict(recipe=cfg, path=path, teacher="exact gmm8 flow, rk4", command="python -m diffkit.fewstep",
                final_loss=dict(flow_map=res_fm.losses[-1], consistency=res_cm.losses[-1]))
    return save_checkpoint(out, both, net, meta)


def load_pretrained(stem: Path = CHECKPOINT) -> tuple[FlowMapNet, FlowMapNet]:
    """The shipped gmm8 ``(flow_map, consistency)`` networks (float32, eval mode), on the ``linear``
    path (:data:`PRETRAINED_PATH`)."""
    from .train import load_checkpoint

    def build(config):
        return nn.ModuleDict({"flow_map": FlowMapNet(**config), "consistency": FlowMapNet(**config)})

    both, _ = load_checkpoint(stem, build)
    return both["flow_map"], both["consistency"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Train and write the shipped gmm8 few-step checkpoint.")
    ap.add_argument("--out", type=Path, default=CHECKPOINT)
    args = ap.parse_args(argv)
    for p in build_pretrained(args.out):
        print(p, p.stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
