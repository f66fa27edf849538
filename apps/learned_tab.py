"""Demo tab "Learned vs exact": a shipped 2D model (``diffkit.pretrained``) beside the exact model
it approximates.

Pick a 2D set and a view. For ``gmm8`` (eight Gaussians on a circle, an exact Gaussian mixture) the
shipped model of that view (``gmm8-elbo``, ``gmm8-dsm``, ``gmm8-cfm``) is drawn beside the exact
mixture: both velocity fields at the chosen ``t``, samples of both from the same prior draws, and
the learned denoiser's error against the exact one over ``t`` (``diffkit.metrics.denoiser_error``, as measured when it was trained and stored with it),
for all three views. For ``moons`` there is no exact field (its law has no closed form): the tab
says so and shows the samples against held-out data, with their W2 distance to that data
(``diffkit.metrics.w2_empirical``, exact optimal transport between the two clouds) against the
number of steps.

Bounds (``SPECS``, through ``apps.widgets``: clamped in the page, refused by the API, said in the
UI): ``t`` in [``T_MIN``, ``T_MAX``], ``steps`` in 1..``MAX_STEPS``, ``points`` in
``MIN_POINTS``..``MAX_POINTS``, ``seed`` in 0..``MAX_SEED``; the set, the view and the solver from
fixed lists. Every output is deterministic in the inputs and cached; the error curves and the W2
curves are computed once. One interaction costs well under a second on a CPU.
"""

from __future__ import annotations

import functools
import time

import gradio as gr
import torch

from apps import widgets as w
from diffkit import data, metrics, paths, pretrained, views
from diffkit import sample as run_sampler
from diffkit.viz import learning as vl

TITLE = "Learned vs exact"
API_NAME = "learned"
PLOT_FORMAT = "png"
DATA_NAMES = ("gmm8", "moons")
VIEWS = ("variational", "score", "flow")
#: the shipped model of each (set, view); the moons model serves every view (one was shipped)
MODELS = {("gmm8", "variational"): "gmm8-elbo", ("gmm8", "score"): "gmm8-dsm", ("gmm8", "flow"): "gmm8-cfm"}
MOONS_MODEL = "moons"
SOLVERS = ("dpm++2m", "euler", "heun", "ddim", "ddpm")
T_MIN, T_MAX = 0.02, 0.98
MAX_STEPS = 50
MIN_POINTS, MAX_POINTS = 64, 512
MAX_SEED = 9999
FIELD_N = 15
EXTENT = (-3.6, 3.6, -3.6, 3.6)
#: the step counts of the moons W2 curve
CURVE_STEPS = (1, 2, 4, 8, 16, 32)
CURVE_POINTS = 256
DEFAULT = {"data": "gmm8", "view": "flow", "t": 0.3, "solver": "dpm++2m", "steps": 20,
           "points": 256, "seed": 0}
F64 = torch.float64


def model_name(data_name: str, view: str) -> str:
    """The shipped model shown for ``(data_name, view)``."""
    return MODELS[(data_name, view)] if data_name == "gmm8" else MOONS_MODEL


@functools.cache
def model(name: str):
    """``diffkit.pretrained.load(name)``, once."""
    return pretrained.load(name)


def model_path(name: str):
    """The Gaussian path the shipped model ``name`` was trained on."""
    return paths.get(model(name).config["path"])


@functools.cache
def held_out(data_name: str) -> torch.Tensor:
    """``MAX_POINTS`` points of ``data_name`` from a fixed seed that no shipped model trained on."""
    return data.toy(data_name, MAX_POINTS, generator=torch.Generator().manual_seed(2024), dtype=F64)


@functools.cache
def error_curves() -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    """``(ts, E ||D_theta - D||^2 at ts)`` of each shipped gmm8 model against the exact denoiser
    of gmm8 on the model's own path, as measured when it was trained (its ``.metrics``)."""
    out = {}
    for view in VIEWS:
        m = model(MODELS[("gmm8", view)]).metrics
        out[view] = (tuple(float(t) for t in m["ts"]), tuple(float(v) for v in m["denoiser_mse"]))
    if len({ts for ts, _ in out.values()}) != 1:
        raise ValueError("the shipped gmm8 models record their errors at different times")
    return out


def _samples(denoiser, path, solver: str, steps: int, points: int, seed: int) -> tuple[torch.Tensor, int]:
    x1 = path.prior((points, 2), generator=torch.Generator().manual_seed(seed), dtype=F64)
    res = run_sampler(denoiser, path, x1, solver=solver, steps=steps, grid="logsnr",
                      generator=torch.Generator().manual_seed(seed + 1))
    return res.x, res.nfe


@functools.lru_cache(maxsize=32)
def w2_curve(name: str, data_name: str, solver: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """``(nfe, W2 to held-out data)`` of model ``name`` at ``CURVE_STEPS`` steps of ``solver``
    (``CURVE_POINTS`` samples, seed 0); cached."""
    m = model(name)
    ref = held_out(data_name)[:CURVE_POINTS]
    nfe, w2 = [], []
    for n in CURVE_STEPS:
        x, calls = _samples(m.denoiser(), model_path(name), solver, n, CURVE_POINTS, 0)
        nfe.append(calls)
        w2.append(metrics.w2_empirical(x, ref))
    return tuple(nfe), tuple(w2)


def _velocity(denoiser, path, x, t):
    tt = torch.tensor(t, dtype=F64)
    return views.from_x0("velocity", denoiser(x, tt), x, tt, path)


@torch.no_grad()
def compute(data_name: str, view: str, t: float, solver: str, steps: int, points: int, seed: int = 0):
    """``(learned figure, exact figure, curve figure, values, note)`` for validated inputs
    (``SPECS``; the endpoint validates and caches)."""
    start = time.perf_counter()
    name = model_name(data_name, view)
    m, path = model(name), model_path(name)
    D = m.denoiser()
    ref = held_out(data_name)[:points]
    pts = vl.field_grid((-3.3, 3.3, -3.3, 3.3), FIELD_N)
    x, nfe = _samples(D, path, solver, steps, points, seed)
    w2 = metrics.w2_empirical(x, ref)
    learned_v = _velocity(D, path, pts, t)
    values = {"data": data_name, "view": view, "model": name, "trained_with": m.config.get("loss"),
              "path_name": path.name, "t": t, "solver": solver, "steps": steps, "nfe": nfe,
              "points": points, "seed": seed, "w2_learned": w2}
    if data_name == "gmm8":
        mix = data.toy_mixture("gmm8")
        exact_v = _velocity(mix.denoiser(path), path, pts, t)
        x_exact, _ = _samples(mix.denoiser(path), path, solver, steps, points, seed)
        values["w2_exact"] = metrics.w2_empirical(x_exact, ref)
        vmax = float(max(learned_v.norm(dim=1).max(), exact_v.norm(dim=1).max()))
        fig_l = vl.plot_field(pts, learned_v, samples=x, density=mix, extent=EXTENT, vmax=vmax,
                              title=f"{name}: velocity at t = {t:.2f}, {nfe}-NFE samples")
        fig_e = vl.plot_field(pts, exact_v, samples=x_exact, density=mix, extent=EXTENT, vmax=vmax,
                              title=f"exact gmm8: velocity at t = {t:.2f}, same start")
        curves = error_curves()
        ts, err = curves[view]
        k = min(range(len(ts)), key=lambda i: abs(ts[i] - t))
        values["denoiser_error_at_t"] = err[k]
        values["error_t"] = ts[k]
        values["error_ts"], values["error_curve"] = list(ts), list(err)
        fig_c = vl.plot_error_over_t(ts, {f"{v} ({MODELS[('gmm8', v)]})": curves[v][1] for v in VIEWS},
                                     title="learned vs exact denoiser of gmm8 (measured at training)")
        ax = fig_c.axes[0]
        for line, v in zip(ax.get_lines(), VIEWS):
            line.set_linewidth(2.4 if v == view else 0.9)
            line.set_alpha(1.0 if v == view else 0.6)
        ax.plot([ts[k]], [err[k]], "k*", ms=12, zorder=5)
        note = (f"**{name}** ({view} view, {path.name} path): W2 of its {points} samples to held-out "
                f"data **{w2:.3f}**; the exact denoiser with the same start and solver: "
                f"**{values['w2_exact']:.3f}**. Its denoiser error against the exact one at "
                f"t = {ts[k]:.2f}: **{err[k]:.3g}** (the star).")
    else:
        fig_l = vl.plot_field(pts, learned_v, samples=x, reference=ref, extent=EXTENT,
                              title=f"{name}: velocity at t = {t:.2f}, {nfe}-NFE samples")
        fig_e = vl.plot_clouds({"held-out data": ref, "samples": x}, extent=EXTENT,
                               note="moons has no closed-form law:\nno exact field to compare with",
                               title=f"samples against held-out data: W2 {w2:.3f}")
        nfes, w2s = w2_curve(name, data_name, solver)
        fig_c = vl.plot_vs_nfe({f"{name}, {solver}": (nfes, w2s)}, ylabel="W2 to held-out data", logy=True,
                               title=f"W2 to data against NFE ({CURVE_POINTS} samples)")
        fig_c.axes[0].plot([nfe], [w2], "k*", ms=12, zorder=5, label="this run")
        values["curve_nfe"], values["curve_w2"] = list(nfes), list(w2s)
        values["exact"] = None
        note = (f"**{name}** ({m.config.get('loss', '?')} loss, {path.name} path; the only shipped "
                f"moons model, so it stands for every view). **moons has no exact field**: its law "
                f"has no closed form, so the model is graded by the W2 distance of its samples to "
                f"held-out data: **{w2:.3f}** with {nfe} NFE.")
    values["seconds"] = round(time.perf_counter() - start, 3)
    return fig_l, fig_e, fig_c, values, note


#: the tab's inputs, in the order of ``compute``'s parameters (their names are the API's)
SPECS = (
    w.Choice("data_name", DATA_NAMES, DEFAULT["data"], label="2D set"),
    w.Choice("view", VIEWS, DEFAULT["view"], label="view (the loss the model was trained with)"),
    w.Numeric("t", T_MIN, T_MAX, DEFAULT["t"], step=0.01, label="t of the velocity field"),
    w.Choice("solver", SOLVERS, DEFAULT["solver"], label="solver"),
    w.Numeric("steps", 1, MAX_STEPS, DEFAULT["steps"], integer=True, label="steps"),
    w.Numeric("points", MIN_POINTS, MAX_POINTS, DEFAULT["points"], integer=True, step=32, label="points"),
    w.Numeric("seed", 0, MAX_SEED, DEFAULT["seed"], integer=True, label="seed"),
)
ENDPOINT = w.Endpoint(compute, SPECS, api_name=API_NAME, plot_format=PLOT_FORMAT)


def build() -> None:
    """Lay out the tab inside the current ``gr.Blocks``/``gr.Tab`` and wire its one endpoint."""
    error_curves()
    first = ENDPOINT.default_view()
    gr.Markdown(
        "A **shipped model** (`diffkit.pretrained`) beside the **exact** one. For *gmm8* (a Gaussian "
        "mixture) the exact velocity field and denoiser are closed form: left the model's field and "
        "samples, right the exact ones from the same prior draws, below the model's denoiser "
        "error against the exact denoiser over t, for all three views. For *moons* there is no "
        "exact field; the model is graded by the W2 distance of its samples to held-out data.")
    with gr.Row():
        inputs = {"data_name": SPECS[0].dropdown(elem_id="learned-data"),
                  "view": SPECS[1].dropdown(elem_id="learned-view"),
                  "solver": SPECS[3].dropdown(elem_id="learned-solver")}
    with gr.Row():
        inputs["t"] = SPECS[2].slider(elem_id="learned-t")
        inputs["steps"] = SPECS[4].slider(elem_id="learned-steps")
        inputs["points"] = SPECS[5].slider(elem_id="learned-points")
        inputs["seed"] = SPECS[6].number(elem_id="learned-seed")
    with gr.Row():
        learned_out = gr.Plot(first[0], label="learned", show_label=False, format=PLOT_FORMAT,
                              elem_id="learned-model")
        exact_out = gr.Plot(first[1], label="exact", show_label=False, format=PLOT_FORMAT,
                            elem_id="learned-exact")
    with gr.Row():
        with gr.Column(scale=3):
            curve_out = gr.Plot(first[2], label="error over t", show_label=False, format=PLOT_FORMAT,
                                elem_id="learned-curve")
        with gr.Column(scale=2):
            note = gr.Markdown(first[4], elem_id="learned-note")
            values_out = gr.JSON(first[3], label="this run", max_height=360, elem_id="learned-values")
    ENDPOINT.wire(inputs, [learned_out, exact_out, curve_out, values_out, note])
