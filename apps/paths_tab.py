"""Demo tab "Paths": a Gaussian path's alpha, sigma and logSNR, and the exact marginal p_t of a
2D Gaussian mixture moving with t.

Everything shown is closed form: ``x_t = alpha(t) x0 + sigma(t) eps`` maps a mixture with
components ``N(m_k, C_k)`` to the mixture with components ``N(alpha m_k, alpha^2 C_k + sigma^2 I)``
(``diffkit.analytic.GaussianMixture.marginal``), whose density is evaluated on a fixed grid.
No sampling, no network: one interaction costs well under a second on a CPU, and a repeated one
is a cache look-up (``apps.widgets.Endpoint``).

Bounds: ``t`` in [0, 1] (typed values outside are clamped in the page and refused by the API),
path and mixture from fixed lists, grid fixed at ``GRID`` x ``GRID``. Printed values are rounded
to ``DIGITS`` significant digits.
"""

from __future__ import annotations

import functools
import math
import time

import gradio as gr
import torch

from apps import widgets as w
from diffkit import analytic, paths, viz

TITLE = "Paths"
API_NAME = "paths"
PLOT_FORMAT = "webp"  # a quarter of PNG's bytes for these figures, at the same drawing cost
GRID = 128  # density grid resolution, fixed (not an input)
T_MIN, T_MAX = 0.0, 1.0
DEFAULT = {"path": "vp-cosine", "mixture": "two blobs", "t": 0.3, "compare": False}
DIGITS = 6  # significant digits of every printed value


def _mixture(weights, means, covs) -> analytic.GaussianMixture:
    f64 = dict(dtype=torch.float64)
    return analytic.GaussianMixture(torch.tensor(weights, **f64), torch.tensor(means, **f64),
                                    torch.tensor(covs, **f64))


def _ring(k: int = 8, radius: float = 2.0, var: float = 0.03) -> analytic.GaussianMixture:
    angles = [2 * math.pi * i / k for i in range(k)]
    means = [[radius * math.cos(a), radius * math.sin(a)] for a in angles]
    return _mixture([1.0 / k] * k, means, [[[var, 0.0], [0.0, var]]] * k)


PRESETS = {
    "two blobs": lambda: _mixture(
        [0.5, 0.5], [[-1.5, 0.5], [1.5, -0.5]],
        [[[0.15, 0.0], [0.0, 0.15]], [[0.30, 0.12], [0.12, 0.20]]]),
    "ring of eight": _ring,
    "three anisotropic": lambda: _mixture(
        [0.5, 0.3, 0.2], [[0.0, 1.5], [-1.5, -1.0], [1.8, -1.2]],
        [[[0.50, 0.0], [0.0, 0.04]], [[0.05, 0.0], [0.0, 0.40]], [[0.20, -0.15], [-0.15, 0.20]]]),
}


@functools.cache
def mixture(name: str) -> analytic.GaussianMixture:
    """The preset mixture called ``name`` (one of ``PRESETS``), built once."""
    if name not in PRESETS:
        raise ValueError(f"mixture must be one of {', '.join(PRESETS)}; got {name!r}")
    return PRESETS[name]()


def _number(x: float):
    """JSON-safe float rounded to ``DIGITS`` significant digits: infinities become the strings
    '+inf' / '-inf'."""
    if math.isfinite(x):
        return float(f"{x:.{DIGITS}g}")
    return "+inf" if x > 0 else ("-inf" if x < 0 else "nan")


def exact_values(path_name: str, mixture_name: str, t):
    """The figures behind the tab, without drawing: ``(values, grid)``.

    ``values`` holds ``alpha``, ``sigma``, ``logsnr`` at ``t`` (clamped to [0, 1]) and, from the
    exact density of ``p_t`` on the fixed grid, its mass (the Riemann sum: 1 up to truncation)
    and mean (exactly ``alpha(t) * E[x0]``); ``grid`` is ``(xs, ys, p_t, p_0)`` for the plot.
    """
    path_name, _ = SPECS[0].check(path_name)
    data = mixture(SPECS[1].check(mixture_name)[0])
    tv, _ = SPECS[2].check(t, clamp=False)
    path = paths.get(path_name)
    marginal = data.marginal(tv, path)
    extent = viz.density_extent(data, marginal)
    xs, ys, dens = viz.density_grid(marginal, extent, GRID)
    d0 = viz.density_grid(data, extent, GRID)[2] if tv > 0 else None

    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    mass = float(dens.sum() * cell)
    mean = [float((dens.sum(0) * xs).sum() * cell / mass),
            float((dens.sum(1) * ys).sum() * cell / mass)]
    alpha, sigma = float(path.alpha(tv)), float(path.sigma(tv))
    data_mean = (data.weights[:, None] * data.means).sum(0)
    values = {
        "path_name": path.name,  # not "path": gradio_client takes {"path": ...} for a file
        "mixture": mixture_name,
        "t": tv,
        "alpha": _number(alpha),
        "sigma": _number(sigma),
        "logsnr": _number(float(path.logsnr(tv))),
        "grid": GRID,
        "extent": [_number(float(v)) for v in extent],
        "mass": round(mass, 6),  # Riemann sums on the grid: 6 decimals
        "mean": [round(v, 6) for v in mean],
        "exact_mean": [_number(float(v)) for v in alpha * data_mean],
    }
    return values, (xs, ys, dens, d0)


def compute(path_name: str, mixture_name: str, t, compare: bool = False):
    """The tab's computation: ``(schedule figure, density figure, exact values, note)`` for a
    valid ``t`` in [0, 1] (anything else raises ``ValueError``)."""
    started_at, start = time.time(), time.perf_counter()
    values, (xs, ys, dens, d0) = exact_values(path_name, mixture_name, t)
    path, tv = paths.get(values["path_name"]), values["t"]
    sched = viz.plot_schedule(path, tv, faint=paths.NAMES if compare else None)
    dens_fig = viz.plot_density(xs, ys, dens, reference=d0,
                                title=f"exact $p_t$ on {path.name}, t = {tv:.3g}")
    lam = values["logsnr"]
    lam = f"{lam:.4g}" if isinstance(lam, float) else lam
    note = (f"x_t = {values['alpha']:.4g} x0 + {values['sigma']:.4g} eps, logSNR = {lam}; "
            f"exact p_t on a fixed {GRID}x{GRID} grid (mass in view {values['mass']:.4f}).")
    values["seconds"] = round(time.perf_counter() - start, 3)
    values["started_at"], values["finished_at"] = started_at, time.time()  # for queue checks
    return sched, dens_fig, values, note


#: the tab's inputs, in the order of ``compute``'s parameters (their names are the API's)
SPECS = (
    w.Choice("path", paths.NAMES, DEFAULT["path"], label="path"),
    w.Choice("mixture", tuple(PRESETS), DEFAULT["mixture"], label="data (2D mixture)"),
    w.Numeric("t", T_MIN, T_MAX, DEFAULT["t"], step=0.01, label="t",
              info=f"0 = data, 1 = prior; density grid fixed at {GRID} x {GRID}"),
    w.Flag("compare", DEFAULT["compare"], label="compare with the other paths"),
)
ENDPOINT = w.Endpoint(compute, SPECS, api_name=API_NAME, plot_format=PLOT_FORMAT)


def build() -> None:
    """Lay out the tab inside the current ``gr.Blocks``/``gr.Tab`` context and wire its events."""
    first = ENDPOINT.default_view()
    gr.Markdown(
        "A Gaussian path noises data as **x_t = alpha(t) x0 + sigma(t) eps** (t = 0 data, "
        "t = 1 prior). Pick a path and a 2D Gaussian mixture, move **t**: the curves show the "
        "schedule, the image the *exact* density p_t of x_t (a Gaussian mixture again; no "
        "sampling). Dashed cyan: the data density p_0. On VE and EDM sigma grows to 80, so "
        "the sigma panel then has a log axis.")
    with gr.Row():
        inputs = {"path": SPECS[0].dropdown(elem_id="paths-path"),
                  "mixture": SPECS[1].dropdown(elem_id="paths-mixture"),
                  "compare": SPECS[3].checkbox(elem_id="paths-compare")}
    inputs["t"] = SPECS[2].slider(elem_id="paths-t")
    sched_out = gr.Plot(first[0], label="schedule", show_label=False, format=PLOT_FORMAT,
                        elem_id="paths-schedule")
    with gr.Row():
        with gr.Column(scale=1):
            dens_out = gr.Plot(first[1], label="exact marginal density p_t", show_label=False,
                               format=PLOT_FORMAT, elem_id="paths-density")
        with gr.Column(scale=1):
            note = gr.Markdown(first[3], label="note", elem_id="paths-note")
            values_out = gr.JSON(first[2], label="exact values at t", max_height=440,
                                 elem_id="paths-values")
    ENDPOINT.wire(inputs, [sched_out, dens_out, values_out, note])
