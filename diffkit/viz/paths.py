"""Plots shared by the lessons and the demo hub.

Every function draws with matplotlib's object interface (``matplotlib.figure.Figure``), never
with ``pyplot``'s global state, so the demo hub may render several figures at once from its
worker threads. A function takes an optional ``ax`` (or ``axes``) to draw into, and returns the
``Figure`` it drew on; in a notebook the returned figure displays itself.

* :func:`plot_schedule`: ``alpha(t)``, ``sigma(t)`` and ``logsnr(t)`` of one path or several,
  with an optional marker at one ``t`` (the forward process ``x_t = alpha x0 + sigma eps``;
  Kingma et al. 2021, "Variational Diffusion Models", Sec. 2).
* :func:`density_grid` and :func:`plot_marginal_density`: the exact density ``p_t`` of
  ``x_t`` for 2D Gaussian or Gaussian-mixture data, evaluated on a grid from the closed-form
  marginal (``diffkit.analytic``), not from samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from .. import paths as _paths

__all__ = [
    "plot_schedule",
    "density_grid",
    "density_extent",
    "plot_density",
    "plot_marginal_density",
    "SCHEDULE_COLORS",
]

#: one colour per path name, the same in every lesson and demo
SCHEDULE_COLORS = {
    "vp-linear": "#1f77b4",
    "vp-cosine": "#ff7f0e",
    "ve": "#2ca02c",
    "edm": "#d62728",
    "linear": "#9467bd",
}

#: the logSNR curves are drawn over ``t`` in this window: logSNR is +inf at t = 0 (and -inf at
#: t = 1 on the linear path), so the ends are left out; the panel's axis then holds every value
#: drawn, the marker at ``t`` included
LOGSNR_T = (1e-3, 1.0 - 1e-3)

#: sigma panel: a log axis as soon as some path's sigma(1) exceeds this (VE, EDM reach 80)
SIGMA_LOG_ABOVE = 5.0


def _as_paths(paths) -> list:
    if isinstance(paths, (str, _paths.GaussianPath)):
        paths = [paths]
    out = [_paths.get(p) for p in paths]
    if not out:
        raise ValueError("paths must name at least one path")
    return out


def _new_axes(n: int, width: float, height: float):
    # fixed margins: constrained layout costs more than the drawing itself
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.065, right=0.99, bottom=0.16, top=0.89, wspace=0.3)
    axes = fig.subplots(1, n, squeeze=False)[0]
    return fig, list(axes)


def plot_schedule(paths, t: float | None = None, *, axes: Sequence | None = None,
                  n: int = 400, faint: Sequence | None = None) -> Figure:
    """Draw ``alpha(t)``, ``sigma(t)`` and ``logsnr(t)`` over ``t in [0, 1]`` in three panels.

    Args:
        paths: a path, a path name, or a list of them (each drawn in its own colour).
        t: if given, a vertical line and a dot on every curve at this time (clamped to [0, 1]).
        axes: three matplotlib axes to draw into; a new figure when ``None``.
        n: number of evaluation points (closed forms, so this only sets smoothness).
        faint: more paths drawn thin and pale behind ``paths``, for comparison.

    Returns:
        the ``Figure`` holding the three panels.
    """
    main = _as_paths(paths)
    extra = _as_paths(faint) if faint else []
    if axes is None:
        fig, axes = _new_axes(3, 10.5, 3.0)
    else:
        axes = list(axes)
        if len(axes) != 3:
            raise ValueError(f"axes must hold 3 axes (alpha, sigma, logsnr); got {len(axes)}")
        fig = axes[0].figure
    # t = 0 and t = 1 are kept off the logSNR curve, where it is infinite on some paths
    ts = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    ts_inner = torch.linspace(*LOGSNR_T, n, dtype=torch.float64)
    log_sigma = max(float(p.sigma(1.0)) for p in main + extra) > SIGMA_LOG_ABOVE
    # on a log axis sigma(0) = 0 has no place: start the sigma curves where sigma > 0
    ts_sigma = ts_inner if log_sigma else ts
    lam_seen = []

    def draw(p, style):
        color = SCHEDULE_COLORS.get(p.name, None)
        axes[0].plot(ts.numpy(), p.alpha(ts).numpy(), color=color, **style)
        axes[1].plot(ts_sigma.numpy(), p.sigma(ts_sigma).numpy(), color=color, **style)
        lam = p.logsnr(ts_inner)
        lam_seen.append(lam[torch.isfinite(lam)])
        axes[2].plot(ts_inner.numpy(), lam.numpy(), color=color, **style)

    for p in extra:
        if p.name not in {q.name for q in main}:
            draw(p, dict(lw=1.0, alpha=0.35, label=p.name))
    for p in main:
        draw(p, dict(lw=2.0, label=p.name))

    if t is not None:
        tv = min(max(float(t), 0.0), 1.0)
        for ax in axes:
            ax.axvline(tv, color="0.4", lw=0.8, ls="--")
        for p in main:
            color = SCHEDULE_COLORS.get(p.name, None)
            a, s = float(p.alpha(tv)), float(p.sigma(tv))
            axes[0].plot([tv], [a], "o", color=color, ms=6)
            axes[1].plot([tv], [s], "o", color=color, ms=6)
            lam = float(p.logsnr(tv))  # +inf at t = 0: no marker there
            if math.isfinite(lam):
                axes[2].plot([tv], [lam], "o", color=color, ms=6)
                lam_seen.append(torch.tensor([lam], dtype=torch.float64))

    titles = (r"$\alpha(t)$ (signal)",
              r"$\sigma(t)$ (noise)" + (", log axis" if log_sigma else ""),
              r"$\log\mathrm{SNR}(t) = 2\log(\alpha/\sigma)$")
    ylabels = (r"$\alpha$", r"$\sigma$", "logSNR (nats)")
    for ax, title, ylabel in zip(axes, titles, ylabels):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("t  (0 = data, 1 = prior)")
        ax.set_ylabel(ylabel, labelpad=1)
        ax.set_xlim(0.0, 1.0)
        ax.grid(alpha=0.3)
    seen = torch.cat(lam_seen)
    if seen.numel():
        lo, hi = float(seen.min()), float(seen.max())
        pad = 0.05 * max(hi - lo, 1.0)
        axes[2].set_ylim(lo - pad, hi + pad)
    if log_sigma:
        # VE / EDM reach sigma of tens: a log axis shows every path's sigma without a kink
        axes[1].set_yscale("log")
    axes[0].legend(fontsize=8, loc="best")
    return fig


def _components(dist):
    """Means [K, d] and covariances [K, d, d] of a Gaussian or a Gaussian mixture."""
    if hasattr(dist, "covs"):
        return dist.means, dist.covs
    return dist.mean.unsqueeze(0), dist.cov.unsqueeze(0)


def density_extent(*dists, width: float = 4.0) -> tuple[float, float, float, float]:
    """A square window ``(x0, x1, y0, y1)`` holding every component of every 2D ``dist`` out to
    ``width`` standard deviations along its widest direction."""
    lo = np.full(2, np.inf)
    hi = np.full(2, -np.inf)
    for dist in dists:
        means, covs = _components(dist)
        if means.shape[-1] != 2:
            raise ValueError(f"dist must be 2-dimensional; got dimension {means.shape[-1]}")
        std = torch.linalg.eigvalsh(covs.to(torch.float64)).amax(-1).clamp_min(0).sqrt()
        m = means.to(torch.float64)
        lo = np.minimum(lo, (m - width * std[:, None]).amin(0).numpy())
        hi = np.maximum(hi, (m + width * std[:, None]).amax(0).numpy())
    center, half = (lo + hi) / 2, float((hi - lo).max()) / 2
    return (center[0] - half, center[0] + half, center[1] - half, center[1] + half)


def density_grid(dist, extent: Sequence[float], n: int = 160):
    """The density of a 2D ``dist`` (anything with ``log_prob(x [N, 2]) -> [N]``) at the centres
    of an ``n x n`` grid of cells covering ``extent = (x0, x1, y0, y1)``.

    Returns ``(xs [n], ys [n], density [n, n])`` as float64 numpy arrays, ``density[i, j]`` at
    ``(xs[j], ys[i])``. The Riemann sum ``density.sum() * dx * dy`` approximates the mass in the
    window (1 when the window holds the distribution).
    """
    x0, x1, y0, y1 = (float(v) for v in extent)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"extent must be (x0, x1, y0, y1) with x1 > x0, y1 > y0; got {extent}")
    n = int(n)
    if n < 2:
        raise ValueError(f"n must be >= 2; got {n}")
    dx, dy = (x1 - x0) / n, (y1 - y0) / n
    xs = torch.linspace(x0 + dx / 2, x1 - dx / 2, n, dtype=torch.float64)
    ys = torch.linspace(y0 + dy / 2, y1 - dy / 2, n, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1)
    with torch.no_grad():
        dens = dist.log_prob(pts).exp().reshape(n, n)
    return xs.numpy(), ys.numpy(), dens.numpy()


def plot_density(xs, ys, density, *, ax=None, reference=None, title: str | None = None,
                 cmap: str = "magma", colorbar: bool = True) -> Figure:
    """Draw a density given on a grid (the output of :func:`density_grid`) as an image with
    contour lines, axes ``x_1``, ``x_2`` and (``colorbar``) a colour bar of the density;
    ``reference``, a second density on the same grid, is drawn as dashed contours.
    """
    xs, ys, density = np.asarray(xs), np.asarray(ys), np.asarray(density)
    if ax is None:
        fig = Figure(figsize=(5.2, 4.4))
        fig.subplots_adjust(left=0.12, right=0.9, bottom=0.11, top=0.93)
        ax = fig.subplots()
    else:
        fig = ax.figure
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    extent = (xs[0] - dx / 2, xs[-1] + dx / 2, ys[0] - dy / 2, ys[-1] + dy / 2)
    im = ax.imshow(density, origin="lower", extent=extent, cmap=cmap, aspect="equal",
                   interpolation="bilinear")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$", labelpad=1)
    if colorbar:
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        cb.set_label("density $p_t(x)$", fontsize=9)
        cb.ax.tick_params(labelsize=8)
    if density.max() > 0:
        ax.contour(xs, ys, density, levels=6, colors="white", linewidths=0.5, alpha=0.6)
    if reference is not None and np.asarray(reference).max() > 0:
        ax.contour(xs, ys, np.asarray(reference), levels=4, colors="cyan", linewidths=0.7,
                   linestyles="dashed", alpha=0.7)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_marginal_density(mixture, t: float, path, *, ax=None, n: int = 160, extent=None,
                          reference: bool = True, cmap: str = "magma") -> Figure:
    """Draw the exact density ``p_t`` of ``x_t = alpha(t) x0 + sigma(t) eps`` for 2D Gaussian
    (or Gaussian-mixture) data ``x0``.

    ``p_t`` is again a Gaussian mixture, component ``k`` having mean ``alpha m_k`` and covariance
    ``alpha^2 C_k + sigma^2 I`` (``mixture.marginal(t, path)``), so it is evaluated exactly on an
    ``n x n`` grid. With ``reference``, dashed contours of the data density ``p_0`` are drawn
    on top. ``extent`` defaults to a window holding both ``p_0`` and ``p_t``.
    """
    path = _paths.get(path)
    tv = min(max(float(t), 0.0), 1.0)
    marginal = mixture.marginal(tv, path)
    if extent is None:
        extent = density_extent(mixture, marginal)
    xs, ys, dens = density_grid(marginal, extent, n)
    d0 = density_grid(mixture, extent, n)[2] if reference and tv > 0 else None
    return plot_density(xs, ys, dens, ax=ax, reference=d0, cmap=cmap,
                        title=f"exact $p_t$ on {path.name}, t = {tv:.3f}")
