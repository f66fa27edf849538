"""Demo tab "Guidance": classifier-free guidance on a labelled 2D Gaussian mixture.

Four components at distance 1.5 from the origin, two per class (left/right: class 0, up/down:
class 1). The exact conditional and unconditional denoisers (``diffkit.analytic``) are mixed by
``diffkit.guidance.cfg`` (scale 1: conditional, 0: unconditional), optionally only on an interval
of times (``diffkit.guidance.interval``), and run by a deterministic solver. Shown:

* the guided samples over the contours of the exact *tilted* data law
  ``p(x | c)^s p(x)^(1 - s)`` (what CFG is often said to sample; it does not, see lesson 07);
* sample-based precision and coverage of the guided samples against exact draws of the class
  (``diffkit.guidance.knn_precision_coverage``) for a range of scales, the chosen one marked (the curve is cached per class, interval, solver and steps).

Bounds: scale in [0, 6], steps in 2..40, interval ends in [0, 1], a fixed 400 samples; solver and
class from fixed lists. An interaction costs about a second on a CPU; every answer is cached.
"""

from __future__ import annotations

import functools

import gradio as gr
import torch
from matplotlib.figure import Figure

from apps import widgets as w
from diffkit import analytic, guidance, paths, sample
from diffkit.viz import control as vc

TITLE = "Guidance"
API_NAME = "guidance"
PATH = "vp-cosine"
SOLVERS = ("dpm++2m", "heun", "euler", "ddim")
N_SAMPLES = 400
CURVE_SCALES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
BOX, GRID = (-5.0, 5.0, -3.5, 3.5), 80
DEFAULT = {"scale": 3.0, "label": "0", "interval": False, "t_lo": 0.3, "t_hi": 0.8, "solver": "dpm++2m",
           "steps": 12}
F64 = torch.float64


def mixture() -> analytic.GaussianMixture:
    eye = torch.eye(2, dtype=F64)
    means = torch.tensor([[-1.5, 0.0], [1.5, 0.0], [0.0, 1.5], [0.0, -1.5]], dtype=F64)
    return analytic.GaussianMixture(torch.ones(4, dtype=F64), means, torch.stack([0.2 * eye] * 4),
                                    labels=[0, 0, 1, 1])


MIX = mixture()


def _guided(c: int, scale: float, interval: bool, t_lo: float, t_hi: float):
    d_c, d_u = MIX.conditional(c).denoiser(PATH), MIX.denoiser(PATH)
    if interval:
        return guidance.interval(d_c, d_u, scale, t_lo, t_hi)
    return guidance.cfg(d_c, d_u, scale)


def _run(c, scale, interval, t_lo, t_hi, solver, steps) -> torch.Tensor:
    z = paths.get(PATH).prior((N_SAMPLES, 2), generator=torch.Generator().manual_seed(0))
    return sample(_guided(c, scale, interval, t_lo, t_hi), PATH, z, solver=solver, steps=steps).x


@functools.lru_cache(maxsize=64)
def _curve(c, interval, lo, hi, solver, steps) -> tuple:
    """Precision and coverage over ``CURVE_SCALES`` (independent of the chosen scale: cached, so
    moving the scale slider costs one run)."""
    real = _real(c)
    return tuple(guidance.knn_precision_coverage(real, _run(c, s, interval, lo, hi, solver, steps))
                 for s in CURVE_SCALES)


@functools.lru_cache(maxsize=2)
def _real(c) -> torch.Tensor:
    return MIX.conditional(c).sample(N_SAMPLES, torch.Generator().manual_seed(1))


def compute(scale, label, interval, t_lo, t_hi, solver, steps):
    """``(samples figure, precision/coverage figure, values)`` for validated inputs."""
    c = int(label)
    lo, hi = min(t_lo, t_hi), max(t_lo, t_hi)
    xs = _run(c, scale, interval, lo, hi, solver, steps)
    points, cell = guidance.grid_2d(BOX, GRID)
    tilted = guidance.normalise(MIX.tilted_log_prob(points, c, scale), cell)
    fig = Figure(figsize=(5.2, 4.2), dpi=110)
    vc.plot_guided_samples(xs, points, tilted, cell, ax=fig.subplots(),
                           title=f"class {c}, scale {scale:g}: samples over the tilted law")
    curve = _curve(c, interval, lo if interval else 0.0, hi if interval else 1.0, solver, steps)
    here = guidance.knn_precision_coverage(_real(c), xs)
    fig2 = Figure(figsize=(5.2, 4.2), dpi=110)
    ax = fig2.subplots()
    ax.plot(CURVE_SCALES, [r["precision"] for r in curve], "o-", label="precision")
    ax.plot(CURVE_SCALES, [r["coverage"] for r in curve], "s-", label="coverage")
    ax.plot([scale, scale], [here["precision"], here["coverage"]], "k*", ms=10, label="this run")
    ax.set_xlabel("guidance scale s")
    ax.set_ylabel("fraction (k-NN balls, k = 5)")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(f"against {N_SAMPLES} exact draws of class {c}")
    fig2.tight_layout()
    nfe = sample(lambda x, t: x, PATH, torch.zeros(1, 2, dtype=F64), solver=solver, steps=steps).nfe
    values = {"scale": scale, "class": c, "interval": [lo, hi] if interval else None, "solver": solver,
              "steps": steps, "nfe_per_sample": 2 * nfe, "precision": round(here["precision"], 4),
              "coverage": round(here["coverage"], 4), "mean": [round(float(v), 4) for v in xs.mean(0)]}
    return fig, fig2, values


SPECS = (
    w.Numeric("scale", 0.0, 6.0, DEFAULT["scale"], step=0.1, label="guidance scale s",
              info="1 = conditional, 0 = unconditional"),
    w.Choice("label", ("0", "1"), DEFAULT["label"], label="class"),
    w.Flag("interval", DEFAULT["interval"], label="guide only for t in [t_lo, t_hi]"),
    w.Numeric("t_lo", 0.0, 1.0, DEFAULT["t_lo"], step=0.05, label="t_lo"),
    w.Numeric("t_hi", 0.0, 1.0, DEFAULT["t_hi"], step=0.05, label="t_hi"),
    w.Choice("solver", SOLVERS, DEFAULT["solver"], label="solver"),
    w.Numeric("steps", 2, 40, DEFAULT["steps"], integer=True, label="steps"),
)
ENDPOINT = w.Endpoint(compute, SPECS, api_name=API_NAME)


def build() -> None:
    """Lay out the tab and wire its events (the default view is computed once, at start)."""
    first = ENDPOINT.default_view()
    gr.Markdown(
        "Classifier-free guidance **D = D_u + s (D_c - D_u)** on a labelled 2D mixture (class 0: "
        "left/right blobs, class 1: up/down), exact denoisers, a deterministic solver, "
        f"{N_SAMPLES} samples. Contours: the exact tilted law p(x|c)^s p(x)^(1-s). Right: precision "
        "(samples typical of the class) and coverage (class reached) against the scale.")
    with gr.Row():
        inputs = {"scale": SPECS[0].slider(elem_id="guidance-scale"),
                  "label": SPECS[1].dropdown(elem_id="guidance-label"),
                  "solver": SPECS[5].dropdown(elem_id="guidance-solver"),
                  "steps": SPECS[6].slider(elem_id="guidance-steps")}
    with gr.Row():
        inputs["interval"] = SPECS[2].checkbox(elem_id="guidance-interval")
        inputs["t_lo"] = SPECS[3].slider(elem_id="guidance-tlo")
        inputs["t_hi"] = SPECS[4].slider(elem_id="guidance-thi")
    with gr.Row():
        samples = gr.Plot(first[0], show_label=False, elem_id="guidance-samples")
        curve = gr.Plot(first[1], show_label=False, elem_id="guidance-curve")
    values = gr.JSON(first[2], label="this run", elem_id="guidance-values")
    ENDPOINT.wire(inputs, [samples, curve, values])
