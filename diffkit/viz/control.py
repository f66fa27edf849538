"""Pictures of guidance, inverse problems and few-step models (lessons 07-09, the demo tabs).

Pictures only: the numbers come from :mod:`diffkit.guidance`, :mod:`diffkit.inverse`,
:mod:`diffkit.likelihood` and :mod:`diffkit.fewstep`. Like the rest of :mod:`diffkit.viz`, every
function draws on a ``matplotlib.figure.Figure`` (never ``pyplot``'s global state), takes an
optional ``ax`` where it draws one panel, and returns the figure.

* :func:`plot_density_pair`: the law CFG samples and the tilted data law, side by side, with
  their difference (cell masses of :func:`diffkit.guidance.tilted_gap`);
* :func:`plot_gap_vs_scale`: TV, KL, precision and coverage against the guidance scale;
* :func:`plot_guided_samples`: guided samples over contours of a density on a grid;
* :func:`plot_w2_vs_nfe_methods`: exact W2 against NFE, one curve per method (log-log);
* :func:`plot_digit_row`: a row of 8x8 images with titles (inpainting);
* :func:`plot_inpainting`: digits, what is seen of them (hidden pixels tinted) and each method's
  completions, with the classifier's reading (green: the true digit, red: another).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = ["plot_density_pair", "plot_gap_vs_scale", "plot_guided_samples", "plot_w2_vs_nfe_methods",
           "plot_digit_row", "plot_inpainting"]


def _grid_image(points: torch.Tensor, masses: torch.Tensor, cell: float):
    n = int(round(points.shape[0] ** 0.5))
    img = (masses / cell).reshape(n, n).detach().cpu().numpy()
    pts = points.detach().cpu().numpy()
    extent = (pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max())
    return img, extent


def plot_density_pair(gap: Mapping, title: str = "", fig: Figure | None = None) -> Figure:
    """Three panels from a :func:`diffkit.guidance.tilted_gap` result: the sampled density, the
    tilted density, and their difference (sampled minus tilted)."""
    fig = fig or Figure(figsize=(11.5, 3.6), dpi=110)
    axes = fig.subplots(1, 3)
    sampled, ext = _grid_image(gap["points"], gap["sampled"], gap["cell"])
    tilted, _ = _grid_image(gap["points"], gap["tilted"], gap["cell"])
    vmax = max(sampled.max(), tilted.max())
    for ax, img, name in ((axes[0], sampled, "law CFG samples"), (axes[1], tilted, "tilted data law")):
        im = ax.imshow(img, origin="lower", extent=ext, cmap="viridis", vmin=0, vmax=vmax)
        ax.set_title(name)
        fig.colorbar(im, ax=ax, label="density")
    diff = sampled - tilted
    lim = np.abs(diff).max() or 1.0
    im = axes[2].imshow(diff, origin="lower", extent=ext, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[2].set_title(f"difference (TV {gap['tv']:.3f})")
    fig.colorbar(im, ax=axes[2], label="density difference")
    for ax in axes:
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_gap_vs_scale(scales: Sequence[float], rows: Sequence[Mapping], fig: Figure | None = None) -> Figure:
    """Two panels against the guidance scale: TV and KL of the sampled law to the tilted law; the
    precision and coverage of the sampled law against the class's own law."""
    fig = fig or Figure(figsize=(10, 3.6), dpi=110)
    a, b = fig.subplots(1, 2)
    a.plot(scales, [r["tv"] for r in rows], "o-", label="TV")
    a.plot(scales, [r["kl"] for r in rows], "s-", label="KL(sampled || tilted) (nats)")
    a.set_xlabel("guidance scale s")
    a.set_ylabel("gap to the tilted data law")
    a.legend(loc="upper left")
    b.plot(scales, [r["precision"] for r in rows], "o-", label="precision")
    b.plot(scales, [r["coverage"] for r in rows], "s-", label="coverage")
    b.set_xlabel("guidance scale s")
    b.set_ylabel("mass (0.95 highest-density regions)")
    b.set_ylim(0, 1.05)
    b.legend(loc="lower left")
    fig.tight_layout()
    return fig


def plot_guided_samples(samples: torch.Tensor, points: torch.Tensor, masses: torch.Tensor, cell: float,
                        title: str = "", ax=None) -> Figure:
    """Samples (dots) over the contours of a density given as cell masses on a grid."""
    if ax is None:
        fig = Figure(figsize=(4.2, 4), dpi=110)
        ax = fig.subplots()
    else:
        fig = ax.figure
    img, ext = _grid_image(points, masses, cell)
    n = img.shape[0]
    xs = np.linspace(ext[0], ext[1], n)
    ys = np.linspace(ext[2], ext[3], n)
    s = samples.detach().cpu().numpy()
    ax.scatter(s[:, 0], s[:, 1], s=2, alpha=0.35, color="#d62728", zorder=1)
    ax.contour(xs, ys, img, levels=6, colors="k", linewidths=0.8, zorder=2)
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return fig


def plot_w2_vs_nfe_methods(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
                           ylabel: str = "exact W2 to the posterior", ax=None) -> Figure:
    """One log-log curve per method: ``curves[name] = (nfes, errors)``."""
    if ax is None:
        fig = Figure(figsize=(6, 4), dpi=110)
        ax = fig.subplots()
    else:
        fig = ax.figure
    for name, (nfe, err) in curves.items():
        ax.loglog(nfe, err, "o-", label=name)
    ax.set_xlabel("NFE (denoiser calls)")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def plot_digit_row(images: Sequence[torch.Tensor], titles: Sequence[str], fig: Figure | None = None) -> Figure:
    """8x8 images in ``[-1, 1]`` in one row, with titles (no axes: pixels)."""
    fig = fig or Figure(figsize=(1.6 * len(images), 1.9), dpi=110)
    axes = np.atleast_1d(fig.subplots(1, len(images)))
    for ax, img, title in zip(axes, images, titles):
        ax.imshow(img.reshape(8, 8).detach().cpu().numpy(), cmap="gray_r", vmin=-1, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


HIDDEN_TINT = (1.0, 0.78, 0.35)  # hidden pixels of an observation: light orange


def _observation_rgb(image: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """An 8x8 digit black on white with the hidden pixels (``mask`` false) tinted."""
    grey = (1.0 - (image.reshape(8, 8).detach().cpu().double().numpy() + 1.0) / 2.0).clip(0, 1)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    hidden = ~mask.reshape(8, 8).cpu().numpy().astype(bool)
    rgb[hidden] = HIDDEN_TINT
    return rgb


def plot_inpainting(images: torch.Tensor, mask: torch.Tensor, completions: Mapping[str, torch.Tensor],
                    predicted: Mapping[str, torch.Tensor] | None = None, labels: torch.Tensor | None = None,
                    fig: Figure | None = None, title: str | None = None,
                    row_titles: Sequence[str] | None = None) -> Figure:
    """Inpainting at a glance: one row per digit of ``images [n, 1, 8, 8]`` (in ``[-1, 1]``, black
    on white): the digit, what is seen of it (``mask [8, 8]`` true = seen; hidden pixels tinted
    orange), then each method's completion (``completions``: name -> ``[n, 1, 8, 8]``). With
    ``predicted`` (name -> the classifier's readings ``[n]``) each completion is titled with its
    reading, framed green when it is ``labels`` and red otherwise. ``row_titles`` name the rows
    (on the left)."""
    n = images.shape[0]
    names = list(completions)
    cols = 2 + len(names)
    fig = fig or Figure(figsize=(1.25 * cols + 0.2, 1.55 * n + (0.5 if title else 0.25)), dpi=110)
    axes = np.asarray(fig.subplots(n, cols, squeeze=False))
    for i in range(n):
        panels = [(images[i], "digit"), (None, "seen")] + [(completions[k][i], k) for k in names]
        for j, (img, head) in enumerate(panels):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if img is None:
                ax.imshow(_observation_rgb(images[i], mask), interpolation="nearest")
            else:
                ax.imshow(img.reshape(8, 8).detach().cpu().numpy(), cmap="gray_r", vmin=-1, vmax=1,
                          interpolation="nearest")
            text = head if i == 0 else ""
            if j >= 2 and predicted is not None:
                read = int(predicted[names[j - 2]][i])
                text = (text + "\n" if text else "") + f"reads {read}"
                if labels is not None:
                    colour = "#1a9850" if read == int(labels[i]) else "#d73027"
                    for spine in ax.spines.values():
                        spine.set_edgecolor(colour)
                        spine.set_linewidth(3)
            if j == 0 and labels is not None:
                text = (text + "\n" if text else "") + f"label {int(labels[i])}"
            ax.set_title(text, fontsize=8)
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
