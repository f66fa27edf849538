"""Pictures of samplers, shared by lesson 06 and the demo hub's Samplers tab.

Like :mod:`diffkit.viz.paths`, every function draws with matplotlib's object interface (a
``matplotlib.figure.Figure``, never ``pyplot``'s global state), takes an optional ``ax`` and
returns the ``Figure`` it drew on. The numbers come from the engine
(:mod:`diffkit.sampler_error`: exact and sample-based W2, orders; :mod:`diffkit.samplers`).

* :func:`plot_trajectories`: a fan of sampling paths in the plane, in the scaled variable
  ``x_t / sqrt(alpha_t^2 + sigma_t^2)`` so that every path (VP, VE, EDM, rectified flow) starts at
  unit scale and ends on the data (:func:`scaled_trajectories`);
* :func:`plot_samples`: final samples over the contours of the exact data density;
* :func:`plot_w2_vs_nfe`: W2 error against the number of function evaluations, log-log, one
  curve per solver: exact, or estimated from samples with its noise floor drawn.

``matched_gaussian``, ``exact_w2``, ``w2_vs_nfe`` and ``fitted_order`` live in
:mod:`diffkit.sampler_error`; they stay importable from here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from .. import paths as _paths
from ..sampler_error import asymptotic_order, exact_w2, fitted_order, matched_gaussian, w2_vs_nfe
from .paths import density_extent, density_grid

__all__ = [
    "SOLVER_COLORS",
    "matched_gaussian",  # from diffkit.sampler_error, kept importable here
    "exact_w2",
    "w2_vs_nfe",
    "fitted_order",
    "scaled_trajectories",
    "plot_trajectories",
    "plot_samples",
    "plot_w2_vs_nfe",
]

#: one colour per solver name, the same in the lesson and the demo
SOLVER_COLORS = {
    "ddpm": "#8c564b",
    "ddim": "#1f77b4",
    "euler-maruyama": "#e377c2",
    "pc": "#7f7f7f",
    "euler": "#17becf",
    "heun": "#ff7f0e",
    "dpm++2m": "#2ca02c",
    "dpm++3m": "#d62728",
    "rk4": "#9467bd",
    "adaptive": "#bcbd22",
}

#: solvers that inject noise in their default setting (drawn dashed)
STOCHASTIC = ("ddpm", "euler-maruyama", "pc")


# -- the one transformation the pictures apply ---------------------------------------------
def scaled_trajectories(xs: torch.Tensor, ts: torch.Tensor, path) -> np.ndarray:
    """``xs [T+1, n, d]`` at the times ``ts [T+1]`` divided by ``sqrt(alpha_t^2 + sigma_t^2)``
    (1 on VP paths): every path then starts near unit scale and ends on the data."""
    path = _paths.get(path)
    ts = ts.detach().to(device="cpu", dtype=torch.float64)
    scale = torch.sqrt(path.alpha(ts) ** 2 + path.sigma(ts) ** 2)
    return (xs.detach().to(device="cpu", dtype=torch.float64) / scale[:, None, None]).numpy()


# -- pictures ----------------------------------------------------------------------------------
def _axes(ax, size=(4.6, 4.4), right=0.97):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size)
    fig.subplots_adjust(left=0.14, right=right, bottom=0.13, top=0.91)
    return fig, fig.subplots()


def plot_trajectories(xs: torch.Tensor, ts: torch.Tensor, path, *, ax=None,
                      max_paths: int = 96, data=None, title: str | None = None,
                      cmap: str = "viridis", colorbar: bool = True) -> Figure:
    """A fan of sampling trajectories in the plane.

    ``xs [T+1, n, 2]`` are the states at the grid times ``ts [T+1]`` (``SampleResult.xs`` and
    ``.ts``), shown scaled (:func:`scaled_trajectories`); the first ``max_paths`` are drawn as
    lines coloured by ``t`` (yellow near the prior, purple at the data); grey dots mark the
    starts of the lines drawn, black dots every end point (the samples). ``data`` (optional, 2D Gaussian or mixture): its exact density as faint contours;
    ``colorbar``: a colour bar for ``t`` beside the axes.
    """
    fig, ax = _axes(ax, size=(5.0, 4.4), right=0.9)
    ys = scaled_trajectories(xs, ts, path)
    if ys.ndim != 3 or ys.shape[-1] != 2:
        raise ValueError(f"xs must have shape [T+1, n, 2]; got {tuple(xs.shape)}")
    k = min(int(max_paths), ys.shape[1])
    tt = ts.detach().to(dtype=torch.float64).cpu().numpy()
    segs = np.stack([ys[:-1, :k], ys[1:, :k]], axis=2)           # [T, k, 2 (ends), 2]
    colors = np.repeat(0.5 * (tt[:-1] + tt[1:]), k)
    lines = LineCollection(segs.reshape(-1, 2, 2), array=colors, cmap=cmap, linewidths=0.8,
                           alpha=0.7)
    lines.set_clim(0.0, 1.0)
    ax.add_collection(lines)
    ax.scatter(ys[0, :k, 0], ys[0, :k, 1], s=4, color="0.6", zorder=2, label="start")
    ax.scatter(ys[-1, :, 0], ys[-1, :, 1], s=5, color="black", zorder=3, label="end")
    if data is not None:
        xg, yg, dens = density_grid(data, density_extent(data), 96)
        ax.contour(xg, yg, dens, levels=5, colors="#d62728", linewidths=0.6, alpha=0.6)
    lo = np.minimum(ys[0, :k].min(0), ys[-1].min(0))
    hi = np.maximum(ys[0, :k].max(0), ys[-1].max(0))
    c, half = (lo + hi) / 2, float((hi - lo).max()) / 2 * 1.05 + 1e-9
    ax.set_xlim(c[0] - half, c[0] + half)
    ax.set_ylim(c[1] - half, c[1] + half)
    ax.set_aspect("equal")
    if colorbar:
        cb = fig.colorbar(lines, ax=ax, fraction=0.046, pad=0.02)
        cb.set_label("t", fontsize=9, rotation=0, labelpad=6)
        cb.ax.tick_params(labelsize=7)
    ax.set_title(title or r"trajectories, $x_t/\sqrt{\alpha_t^2+\sigma_t^2}$", fontsize=10)
    ax.set_xlabel(r"$x_1/\sqrt{\alpha_t^2+\sigma_t^2}$", fontsize=9)
    ax.set_ylabel(r"$x_2/\sqrt{\alpha_t^2+\sigma_t^2}$", fontsize=9, labelpad=1)
    ax.tick_params(labelsize=8)
    return fig


def plot_samples(samples: torch.Tensor, data, *, ax=None, n_grid: int = 128, extent=None,
                 title: str | None = None) -> Figure:
    """Final samples ``[n, 2]`` as dots over the exact density of ``data`` (a 2D Gaussian or
    Gaussian mixture) shown as an image with contour lines."""
    fig, ax = _axes(ax)
    x = samples.detach().to(device="cpu", dtype=torch.float64).numpy()
    if extent is None:
        extent = density_extent(data, width=3.5)
    xs, ys, dens = density_grid(data, extent, n_grid)
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    box = (xs[0] - dx / 2, xs[-1] + dx / 2, ys[0] - dy / 2, ys[-1] + dy / 2)
    ax.imshow(dens, origin="lower", extent=box, cmap="Blues", aspect="equal",
              interpolation="bilinear")
    ax.contour(xs, ys, dens, levels=6, colors="#08306b", linewidths=0.6, alpha=0.8)
    ax.scatter(x[:, 0], x[:, 1], s=5, color="#d62728", alpha=0.8, zorder=3)
    ax.set_xlim(box[0], box[1])
    ax.set_ylim(box[2], box[3])
    ax.set_title(title or "samples (red) on the exact data density", fontsize=10)
    ax.set_xlabel("$x_1$", fontsize=9)
    ax.set_ylabel("$x_2$", fontsize=9, labelpad=1)
    ax.tick_params(labelsize=8)
    return fig


def plot_w2_vs_nfe(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                   highlight: str | None = None, point: tuple[float, float] | None = None,
                   ax=None, orders: bool = True, order_points: int = 2, exact: bool = True,
                   floor: tuple[float, float, int] | None = None,
                   point_floor: tuple[float, int] | None = None,
                   title: str | None = None, legend_size: float = 8.5) -> Figure:
    """W2 against NFE on log-log axes: ``curves[solver] = (nfe, w2)``.

    ``exact``: the curves are exact W2 (closed form, Gaussian data); otherwise they are
    optimal-transport estimates from samples (:func:`diffkit.sampler_error.sample_w2`) and the
    axis says so. ``floor = (mean, std, n)``: the estimate's noise floor with ``n`` points
    (:func:`diffkit.sampler_error.empirical_w2_floor`), drawn as a grey band; ``point_floor =
    (mean, n)``: the floor at the size of the run ``point``, dotted, when it differs.
    ``highlight``: the solver drawn bold (the others thin); ``point``: an ``(nfe, w2)`` star (the
    run being shown); ``orders``: the legend gives each curve's order, minus the least-squares
    slope over its last ``order_points`` points (:func:`diffkit.sampler_error.asymptotic_order`),
    and its title says so. Stochastic solvers are dashed.
    """
    fig, ax = _axes(ax, size=(7.4, 4.4), right=0.66)
    for name, (nfe, w2) in curves.items():
        nfe, w2 = np.asarray(nfe, dtype=float), np.asarray(w2, dtype=float)
        ok = np.isfinite(w2) & (w2 > 0)
        if not ok.any():
            continue
        label = name
        if orders and ok.sum() >= order_points:
            label += f"  {asymptotic_order(nfe, w2, order_points):.1f}"
        bold = highlight is None or name == highlight
        ax.loglog(nfe[ok], w2[ok], marker="o" if bold else ".", color=SOLVER_COLORS.get(name),
                  lw=2.2 if bold else 1.0, ms=4 if bold else 3, alpha=1.0 if bold else 0.6,
                  ls="--" if name in STOCHASTIC else "-", label=label, zorder=3 if bold else 2)
    if floor is not None:
        mean, std, n = floor
        ax.axhspan(max(mean - 2 * std, 1e-300), mean + 2 * std, color="0.5", alpha=0.25, lw=0,
                   zorder=1)
        ax.axhline(mean, color="0.35", lw=1.0, ls=":", zorder=1,
                   label=f"noise floor, {int(n)} pts\n(band: ±2 sd)")
    if point_floor is not None and (floor is None or int(point_floor[1]) != int(floor[2])):
        ax.axhline(point_floor[0], color="black", lw=0.9, ls="--", zorder=1,
                   label=f"floor at {int(point_floor[1])} pts")
    if point is not None and math.isfinite(point[1]) and point[1] > 0:
        ax.loglog([point[0]], [point[1]], marker="*", ms=14, color="black", ls="none",
                  zorder=4, label="this run")
    ax.set_xlabel("NFE (denoiser calls)")
    ax.set_ylabel("exact W2 to the data" if exact else "W2 estimate (samples vs fresh data)")
    ax.grid(alpha=0.3, which="both")
    head = ("solver  order*" if orders else "solver")
    leg = ax.legend(fontsize=legend_size, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                    borderaxespad=0.0, title=head, title_fontsize=legend_size)
    leg._legend_box.align = "left"
    if orders:
        which = "two" if order_points == 2 else str(order_points)
        ax.annotate(f"*order: minus the log-log slope\nover each curve's last {which} points",
                    xy=(1.02, 0.0), xycoords="axes fraction", fontsize=legend_size - 1,
                    va="bottom", ha="left", color="0.3")
    ax.set_title(title or ("exact W2 against NFE" if exact else "W2 estimate against NFE"),
                 fontsize=10)
    return fig
