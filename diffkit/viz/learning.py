"""Pictures of learned models beside their exact oracles, shared by lessons 00, 02-04 and 10 and
the demo hub's "Learned vs exact" and "Digits" tabs.

Every function draws with matplotlib's object interface (a ``matplotlib.figure.Figure``, never
``pyplot``'s global state), takes an optional ``ax`` and returns the ``Figure`` it drew on. The
numbers come from the engine (``diffkit.analytic``, ``diffkit.metrics``, ``diffkit.pretrained``);
this module only draws them.

* :func:`plot_field`: a 2D vector field (directions, coloured by length) with optional samples,
  reference points and the exact density underneath;
* :func:`plot_clouds`: 2D point clouds side by side (samples against held-out data, where there
  is no exact density to draw);
* :func:`plot_error_over_t`: learned-against-exact error curves over the time ``t``;
* :func:`plot_vs_nfe`: a quality figure (W2, accuracy, FID, ...) against the number of function
  evaluations, one curve per solver or model;
* :func:`plot_digit_grid`: a grid of 8x8 images, each framed by a verdict (green: the classifier
  reads the asked-for class; red: it does not);
* :func:`plot_neighbours`: samples above their nearest training images, with the distances.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from .paths import density_extent, density_grid

__all__ = ["field_grid", "samples_extent", "data_extent", "plot_field", "plot_clouds", "plot_error_over_t",
           "plot_vs_nfe", "plot_digit_grid", "plot_neighbours", "VERDICT_COLORS"]

#: frame colours of :func:`plot_digit_grid`
VERDICT_COLORS = {True: "#2ca02c", False: "#d62728", None: "0.6"}


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(x, dtype=float)


def _axes(ax, size, margins: dict | None = None):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size)
    if margins:
        fig.subplots_adjust(**margins)
    return fig, fig.subplots()


#: room for the axis labels of a line plot drawn on its own figure
_LINE_MARGINS = dict(left=0.15, right=0.97, bottom=0.16, top=0.9)


def field_grid(extent: Sequence[float], n: int = 17, dtype=torch.float64) -> torch.Tensor:
    """The ``n * n`` points ``[n*n, 2]`` of a regular grid over ``extent = (x0, x1, y0, y1)``,
    row by row: where :func:`plot_field` draws its arrows."""
    x0, x1, y0, y1 = (float(v) for v in extent)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"extent must be (x0, x1, y0, y1) with x1 > x0, y1 > y0; got {extent}")
    n = int(n)
    if n < 2:
        raise ValueError(f"n must be >= 2; got {n}")
    gy, gx = torch.meshgrid(torch.linspace(y0, y1, n, dtype=dtype),
                            torch.linspace(x0, x1, n, dtype=dtype), indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1)


def plot_field(points, vectors, *, ax=None, samples=None, reference=None, density=None,
               extent=None, title: str | None = None, cmap: str = "viridis",
               vmax: float | None = None) -> Figure:
    """A 2D vector field drawn as unit arrows at ``points [m, 2]`` in the direction of
    ``vectors [m, 2]``, coloured by their length (shared colour scale up to ``vmax``).

    ``samples [n, 2]``: drawn as red dots (a model's output); ``reference [k, 2]``: as small grey
    dots (held-out data, when there is no exact density); ``density``: a 2D Gaussian or Gaussian
    mixture whose exact density is drawn underneath. ``extent`` defaults to the box of the arrows.
    """
    fig, ax = _axes(ax, (4.6, 4.4))
    p, v = _np(points), _np(vectors)
    if p.ndim != 2 or p.shape[1] != 2 or v.shape != p.shape:
        raise ValueError(f"points and vectors must both be [m, 2]; got {p.shape} and {v.shape}")
    if extent is None:
        pad = 0.04 * max(np.ptp(p[:, 0]), np.ptp(p[:, 1]), 1e-9)
        extent = (p[:, 0].min() - pad, p[:, 0].max() + pad, p[:, 1].min() - pad, p[:, 1].max() + pad)
    if density is not None:
        xs, ys, dens = density_grid(density, extent, 96)
        ax.imshow(dens, origin="lower", extent=tuple(extent), cmap="Greys", aspect="equal",
                  interpolation="bilinear", alpha=0.8)
    if reference is not None:
        r = _np(reference)
        ax.scatter(r[:, 0], r[:, 1], s=2, color="0.55", alpha=0.5, zorder=2, label="data")
    length = np.linalg.norm(v, axis=1)
    unit = v / np.maximum(length, 1e-12)[:, None]
    q = ax.quiver(p[:, 0], p[:, 1], unit[:, 0], unit[:, 1], length, cmap=cmap, scale=28,
                  width=0.005, zorder=3)
    q.set_clim(0.0, vmax if vmax is not None else max(float(length.max()), 1e-12))
    cb = fig.colorbar(q, ax=ax, fraction=0.046, pad=0.02)
    cb.set_label("arrow length", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    if samples is not None:
        s = _np(samples)
        ax.scatter(s[:, 0], s[:, 1], s=4, color="#d62728", alpha=0.7, zorder=4, label="samples")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.tick_params(labelsize=8)
    if samples is not None or reference is not None:
        ax.legend(fontsize=7, loc="lower right", markerscale=3, framealpha=0.8)
    ax.set_title(title or "vector field (direction; colour = length)", fontsize=10)
    return fig


def plot_error_over_t(ts, curves: Mapping[str, Sequence[float]], *, ax=None,
                      title: str | None = None, xlabel: str = "t (0: data, 1: prior)",
                      ylabel: str = r"$\mathbb{E}\,\|D_\theta(x_t,t) - D(x_t,t)\|^2$",
                      logy: bool = True) -> Figure:
    """Learned-against-exact error curves over ``t``: ``curves[name]`` holds one value per entry of
    ``ts`` (for instance the mean squared distance between a learned denoiser and the exact one
    at each time). Non-positive values are left out on a log axis."""
    fig, ax = _axes(ax, (5.6, 3.4), _LINE_MARGINS)
    t = _np(ts)
    if not curves:
        raise ValueError("curves must name at least one curve")
    for j, (name, values) in enumerate(curves.items()):
        y = _np(values)
        if y.shape != t.shape:
            raise ValueError(f"curve {name!r} has {y.shape} values for {t.shape} times")
        ok = np.isfinite(y) & ((y > 0) if logy else True)
        ax.plot(t[ok], y[ok], marker=".", ms=4, color=f"C{j}", label=name)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title or "learned against exact, over t", fontsize=10)
    return fig


def plot_vs_nfe(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, ylabel: str,
                ax=None, logx: bool = True, logy: bool = False, title: str | None = None,
                reference: float | None = None, reference_label: str = "reference") -> Figure:
    """A quality figure against NFE: ``curves[name] = (nfe, values)``, one line each.
    ``reference``: a horizontal dashed line (the same figure for real data, say)."""
    fig, ax = _axes(ax, (5.6, 3.4), _LINE_MARGINS)
    for j, (name, (nfe, values)) in enumerate(curves.items()):
        x, y = _np(nfe), _np(values)
        if x.shape != y.shape:
            raise ValueError(f"curve {name!r}: {x.shape} NFE values for {y.shape} figures")
        ax.plot(x, y, marker="o", ms=4, color=f"C{j}", label=name)
    if reference is not None:
        ax.axhline(reference, color="black", ls="--", lw=1, label=reference_label)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("NFE (denoiser calls)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title or f"{ylabel} against NFE", fontsize=10)
    return fig


def _tile(img: np.ndarray) -> np.ndarray:
    """One image ``[1, h, w]`` or ``[h, w]`` in [-1, 1] as ``[h, w]`` in [0, 1]."""
    img = img[0] if img.ndim == 3 else img
    return np.clip((img + 1.0) / 2.0, 0.0, 1.0)


def plot_digit_grid(images, *, labels=None, predicted=None, ncols: int = 8, ax=None,
                    title: str | None = None, scale: float = 0.62) -> Figure:
    """A grid of images ``[n, 1, h, w]`` (or ``[n, h, w]``) in ``[-1, 1]``, white on black.

    With ``predicted`` (a classifier's labels ``[n]``) each image shows the prediction in its
    corner; with ``labels`` too (the asked-for classes) each is framed green when they agree and
    red when they do not. ``ax`` is ignored when given several images (one axes per image)."""
    imgs = _np(images)
    if imgs.ndim not in (3, 4):
        raise ValueError(f"images must be [n, 1, h, w] or [n, h, w]; got shape {imgs.shape}")
    n = imgs.shape[0]
    if n == 0:
        raise ValueError("images must hold at least one image")
    ncols = max(1, min(int(ncols), n))
    nrows = -(-n // ncols)
    pred = None if predicted is None else _np(predicted).astype(int)
    lab = None if labels is None else _np(labels).astype(int)
    for name, arr in (("predicted", pred), ("labels", lab)):
        if arr is not None and arr.shape != (n,):
            raise ValueError(f"{name} must have one entry per image ({n}); got shape {arr.shape}")
    fig = Figure(figsize=(scale * ncols + 0.2, scale * nrows + (0.45 if title else 0.15)))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for k, a in enumerate(axes):
        a.set_xticks([])
        a.set_yticks([])
        if k >= n:
            a.axis("off")
            continue
        a.imshow(_tile(imgs[k]), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        verdict = None if (pred is None or lab is None) else bool(pred[k] == lab[k])
        for spine in a.spines.values():
            spine.set_color(VERDICT_COLORS[verdict])
            spine.set_linewidth(2.5 if verdict is not None else 0.5)
        if pred is not None:
            a.text(0.97, 0.03, str(pred[k]), transform=a.transAxes, ha="right", va="bottom",
                   fontsize=7, color="white",
                   bbox=dict(boxstyle="square,pad=0.1", fc=VERDICT_COLORS[verdict], ec="none"))
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, wspace=0.06, hspace=0.06,
                        top=1.0 - (0.4 if title else 0.05) / (scale * nrows + 0.45))
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def plot_neighbours(samples, neighbours, distances, *, title: str | None = None,
                    scale: float = 0.7) -> Figure:
    """Samples ``[n, 1, h, w]`` (top row) above their nearest training images (bottom row), each
    pair labelled with its Euclidean distance ``distances [n]``: a copy would show as 0."""
    s, nb, d = _np(samples), _np(neighbours), _np(distances)
    n = s.shape[0]
    if nb.shape != s.shape or d.shape != (n,):
        raise ValueError(f"need samples and neighbours of one shape and one distance each; got "
                         f"{s.shape}, {nb.shape}, {d.shape}")
    fig = Figure(figsize=(scale * n + 0.9, 2 * scale + 0.55))
    axes = fig.subplots(2, n, squeeze=False)
    for k in range(n):
        for row, img in ((0, s[k]), (1, nb[k])):
            a = axes[row, k]
            a.imshow(_tile(img), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            a.set_xticks([])
            a.set_yticks([])
        axes[1, k].set_xlabel(f"{d[k]:.2f}", fontsize=7)
    axes[0, 0].set_ylabel("sample", fontsize=7)
    axes[1, 0].set_ylabel("nearest\ntrain", fontsize=7)
    fig.subplots_adjust(left=0.08, right=0.99, bottom=0.14, top=0.86, wspace=0.08, hspace=0.08)
    fig.suptitle(title or "samples and their nearest training images (L2 distance below)",
                 fontsize=9)
    return fig


def samples_extent(*clouds, pad: float = 0.08) -> tuple[float, float, float, float]:
    """A square window holding every point of every 2D cloud ``[n, 2]`` with a margin."""
    pts = np.concatenate([_np(c).reshape(-1, 2) for c in clouds], axis=0)
    lo, hi = pts.min(0), pts.max(0)
    c, half = (lo + hi) / 2, float((hi - lo).max()) / 2 * (1 + pad) + 1e-9
    return (c[0] - half, c[0] + half, c[1] - half, c[1] + half)


def data_extent(dist, width: float = 3.0) -> tuple[float, float, float, float]:
    """The window :func:`plot_field` uses around a 2D Gaussian or mixture (re-exported from
    :func:`diffkit.viz.paths.density_extent`)."""
    return density_extent(dist, width=width)



def plot_clouds(clouds: Mapping[str, object], *, ax=None, extent=None, title: str | None = None,
                note: str | None = None) -> Figure:
    """Several 2D point clouds ``[n, 2]`` as dots, one colour each (the first grey: the data),
    with ``note`` written in the lower left corner (e.g. why there is no exact field)."""
    fig, ax = _axes(ax, (4.6, 4.4))
    if not clouds:
        raise ValueError("clouds must name at least one point cloud")
    arrays = {k: _np(v) for k, v in clouds.items()}
    for name, a in arrays.items():
        if a.ndim != 2 or a.shape[1] != 2:
            raise ValueError(f"cloud {name!r} must be [n, 2]; got shape {a.shape}")
    colors = ["0.55", "#d62728", "#1f77b4", "#2ca02c"]
    for j, (name, a) in enumerate(arrays.items()):
        ax.scatter(a[:, 0], a[:, 1], s=3 if j == 0 else 4, color=colors[j % len(colors)],
                   alpha=0.5 if j == 0 else 0.75, label=name, zorder=2 + j)
    extent = extent if extent is not None else samples_extent(*arrays.values())
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, loc="upper right", markerscale=3, framealpha=0.8)
    if note:
        ax.text(0.02, 0.02, note, transform=ax.transAxes, fontsize=8, va="bottom", ha="left",
                bbox=dict(boxstyle="round", fc="white", ec="0.7", alpha=0.9), zorder=10)
    ax.set_title(title or "point clouds", fontsize=10)
    return fig
