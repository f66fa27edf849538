"""Demo tab "Samplers": run any solver of ``diffkit.samplers`` with an exact denoiser on 2D data
and see its trajectories, its final samples on the true density, and its W2 error against NFE.

What is exact here, and what is estimated:

* the denoiser ``D(x, t) = E[x0 | x_t = x]`` of every data preset (Gaussian mixtures: Tweedie's
  formula in closed form, ``diffkit.analytic``), and the start of every run (drawn from the exact
  marginal of the data at the grid's first time), so what differs from the data is the solver's
  discretisation error, plus Monte-Carlo noise in the picture;
* the W2 curves for the "one Gaussian" preset: a run is an affine map of its start (and of its
  noise), so its output law is an exact Gaussian and its W2 to the data is closed form
  (``diffkit.sampler_error.exact_w2``): the exact error of the very runs shown;
* the W2 curves for a mixture preset: a run is not affine, so the W2 is *estimated* by optimal
  transport between ``CURVE_POINTS`` outputs and as many fresh draws of the data
  (``diffkit.sampler_error.sample_w2``), with the estimate's noise floor (two independent exact
  samples of the data) drawn as a grey band: below it the estimate cannot tell solvers apart.

Bounds: ``steps`` in 1..``MAX_STEPS``, ``points`` in ``MIN_POINTS``..``MAX_POINTS``, ``seed`` in
0..``MAX_SEED``, every other input from a fixed list (``apps.widgets`` clamps typed values in
the page and refuses them in the API). One interaction costs about a second on a CPU; the W2
curves are computed once per (path, grid, data) and cached, and so is every answer.
"""

from __future__ import annotations

import functools
import time

import gradio as gr
import torch

from apps import widgets as w
from apps.paths_tab import PRESETS as MIXTURES
from diffkit import analytic, paths
from diffkit import sampler_error as se
from diffkit.samplers import available, info, sample
from diffkit.viz import samplers as vs

TITLE = "Samplers"
API_NAME = "samplers"
MAX_STEPS = 100
MIN_POINTS, MAX_POINTS = 16, 512
MAX_SEED = 9999
FAN = 96  # trajectories drawn as lines (all end points are drawn)
#: step counts of the W2 curves (each solver's NFE follows from them)
CURVE_STEPS = (1, 2, 4, 8, 16, 32)
#: points per run of a sample-based W2 curve, and pairs of data samples behind its noise floor
CURVE_POINTS, FLOOR_REPS = 256, 6  # an assignment of 512 points costs 8x one of 256
#: points of a curve over which the legend's order is measured: the last two (16 and 32 steps).
#: Three would reach back to 8 steps, before dpm++2m's asymptotic range on the default path.
ORDER_POINTS = 2
SOLVERS = available()
#: solvers with a fixed grid (an exact output law on Gaussian data, a fixed NFE);
#: ``adaptive`` picks its steps from the state
EXACT_SOLVERS = tuple(s for s in SOLVERS if info(s).affine)
DEFAULT = {"path": "vp-linear", "solver": "euler", "grid": "logsnr", "steps": 10,
           "points": 256, "data": "ring of eight", "seed": 0}
F64 = torch.float64
DIGITS = 6  # significant digits of the printed W2 values

GAUSSIAN = "one Gaussian"
DATA_NAMES = tuple(MIXTURES) + (GAUSSIAN,)

NFE_HELP = ("NFE (denoiser calls) at n steps: n for ddpm, ddim, euler, euler-maruyama, "
            "dpm++2m/3m; 2n - 1 for heun and 4n - 3 for rk4 (their last step is one call); "
            "2n for pc; adaptive picks its own")


@functools.cache
def data(name: str):
    """The 2D data preset ``name`` (one of ``DATA_NAMES``), built once: a Gaussian mixture, or the
    Gaussian ``GAUSSIAN`` whose W2 curves are the exact error of the runs shown."""
    if name == GAUSSIAN:
        return analytic.Gaussian(torch.tensor([0.8, -0.4], dtype=F64),
                                 torch.tensor([[0.6, 0.35], [0.35, 0.4]], dtype=F64))
    if name not in MIXTURES:
        raise ValueError(f"data must be one of {', '.join(DATA_NAMES)}; got {name!r}")
    return MIXTURES[name]()


def is_exact(data_name: str) -> bool:
    """Whether the W2 figures of ``data_name`` are exact (Gaussian data) or estimated."""
    return isinstance(data(data_name), analytic.Gaussian)


@functools.lru_cache(maxsize=64)
def w2_curves(path_name: str, grid: str, data_name: str) -> dict[str, tuple[tuple, tuple]]:
    """W2 against NFE for every fixed-grid solver at ``CURVE_STEPS`` steps of ``grid`` on
    ``path_name``: exact for Gaussian data, estimated from ``CURVE_POINTS`` samples (seed 0)
    for a mixture; cached."""
    dist = data(data_name)
    curves = {}
    for solver in EXACT_SOLVERS:
        if is_exact(data_name):
            nfe, w2 = se.w2_vs_nfe(solver, path_name, dist, CURVE_STEPS, grid)
        else:
            nfe, w2 = se.sample_w2_vs_nfe(solver, path_name, dist, CURVE_STEPS, grid,
                                          n=CURVE_POINTS, seed=0)
        curves[solver] = (tuple(nfe), tuple(w2))
    return curves


@functools.lru_cache(maxsize=64)
def noise_floor(data_name: str, n: int) -> tuple[float, float]:
    """``(mean, std)`` of the sample W2 between two independent ``n``-samples of the data."""
    return se.empirical_w2_floor(data(data_name), n, reps=FLOOR_REPS, seed=0)


def _r(x):
    return None if x is None else float(f"{x:.{DIGITS}g}")


SPECS = (
    w.Choice("path", paths.NAMES, DEFAULT["path"], label="path"),
    w.Choice("solver", SOLVERS, DEFAULT["solver"], label="solver"),
    w.Choice("grid", paths.GRIDS, DEFAULT["grid"], label="time grid"),
    w.Numeric("steps", 1, MAX_STEPS, DEFAULT["steps"], integer=True, label="steps",
              info=NFE_HELP),
    w.Numeric("points", MIN_POINTS, MAX_POINTS, DEFAULT["points"], integer=True, step=16,
              label="points", info=f"{FAN} trajectories drawn"),
    w.Choice("data", DATA_NAMES, DEFAULT["data"], label="data (2D)"),
    w.Numeric("seed", 0, MAX_SEED, DEFAULT["seed"], integer=True, label="seed"),
)


def run(path_name: str, solver: str, grid: str, steps, points, data_name: str, seed=0):
    """One bounded run, without drawing: ``(result, values)``.

    ``result`` is the :class:`diffkit.samplers.SampleResult` (with its trajectory) of ``solver``
    on ``grid`` with ``steps`` steps from ``points`` draws of the exact marginal at the grid's
    first time; ``values`` the figures the tab reports: NFE, the run's W2 (exact for Gaussian
    data; for a mixture the optimal-transport estimate against fresh data, with its noise
    floor), the sample moments next to the exact ones. Refuses (``ValueError``) anything out of
    bounds.
    """
    raw = dict(zip((s.name for s in SPECS), (path_name, solver, grid, steps, points, data_name,
                                              seed)))
    v = {s.name: s.check(raw[s.name], clamp=False)[0] for s in SPECS}
    dist = data(v["data"])
    path = paths.get(v["path"])
    ts = paths.grid(v["grid"], v["steps"], path)
    gen = torch.Generator().manual_seed(v["seed"])
    x_start = dist.marginal(float(ts[0]), path).sample(v["points"], generator=gen)
    res = sample(dist.denoiser(path), path, x_start, solver=v["solver"], grid=ts, generator=gen,
                 return_trajectory=True)

    exact = is_exact(v["data"])
    w2_exact = (se.exact_w2(v["solver"], path, dist, grid=ts)
                if exact and info(v["solver"]).affine else None)
    w2 = w2_exact if exact else se.sample_w2(res.x, dist, v["seed"])
    floor = None if exact else noise_floor(v["data"], v["points"])
    mean = res.x.mean(0)
    values = {
        "path_name": v["path"],  # not "path": gradio_client takes {"path": ...} for a file
        "solver": v["solver"],
        "grid": v["grid"],
        "steps": v["steps"],
        "nfe": res.nfe,
        "points": v["points"],
        "seed": v["seed"],
        "data": v["data"],
        "t_start": _r(float(ts[0])),
        "w2": _r(w2),
        "w2_kind": ("exact (closed form: the law of this run against the data)" if exact else
                    f"estimate: optimal transport between the {v['points']} samples and "
                    f"{v['points']} fresh draws of the data"),
        "w2_exact": _r(w2_exact),
        "w2_noise_floor": None if floor is None else [_r(floor[0]), _r(floor[1])],
        "sample_mean": [round(float(x), 4) for x in mean],
        "exact_mean": [round(float(x), 4) for x in dist.mean],
        "sample_cov": [[round(float(x), 4) for x in row] for row in torch.cov(res.x.T)],
        "exact_cov": [[round(float(x), 4) for x in row] for row in dist.cov],
    }
    return res, values


def compute(path_name: str, solver: str, grid: str, steps, points, data_name: str, seed=0):
    """The tab's computation: ``(trajectories, samples, W2-vs-NFE figures, values, note)``."""
    start = time.perf_counter()
    res, values = run(path_name, solver, grid, steps, points, data_name, seed)
    dist = data(values["data"])
    path = paths.get(values["path_name"])
    exact = is_exact(values["data"])
    title = f"{solver}, {values['steps']} steps on {grid}, NFE {res.nfe}"
    traj = vs.plot_trajectories(res.xs, res.ts, path, max_paths=FAN, title=title)
    samples = vs.plot_samples(res.x, dist, title=f"{values['points']} samples on the exact density")
    curves = w2_curves(values["path_name"], values["grid"], values["data"])
    w2 = values["w2"]
    floor = None if exact else (*noise_floor(values["data"], CURVE_POINTS), CURVE_POINTS)
    point_floor = None if exact else (values["w2_noise_floor"][0], values["points"])
    kind = "exact W2" if exact else "W2 estimate"
    w2_fig = vs.plot_w2_vs_nfe(
        curves, highlight=solver if solver in curves else None,
        point=(res.nfe, w2) if w2 is not None else None, exact=exact, orders=exact,
        order_points=ORDER_POINTS, floor=floor, point_floor=point_floor,
        title=f"{kind} vs NFE ({path.name}, {grid} grid)")
    # two flat tables (the JSON viewer collapses deeper nesting): NFE and W2 per solver
    values["curve_nfe"] = {k: list(v[0]) for k, v in curves.items()}
    values["curve_w2"] = {k: [_r(x) for x in v[1]] for k, v in curves.items()}
    if exact:
        values["curve_order"] = {k: round(se.asymptotic_order(*v, ORDER_POINTS), 2)
                                 for k, v in curves.items()}
    if w2 is None:
        err = (f"{solver} picks its own steps from the state, so its output law has no closed "
               f"form: no exact W2 for it (the curves show the other solvers).")
    elif exact:
        err = f"exact W2 of this run's law to the data: **{w2:.3g}**."
    else:
        err = (f"W2 estimate (this run's {values['points']} samples against as many fresh data "
               f"points): **{w2:.3g}**; an exact sampler would score {floor_text(values)}.")
    note = (f"**{solver}**: {res.nfe} denoiser calls (NFE) for {values['steps']} steps. {err} "
            f"Sample mean ({values['sample_mean'][0]:.3f}, {values['sample_mean'][1]:.3f}) vs "
            f"exact ({values['exact_mean'][0]:.3f}, {values['exact_mean'][1]:.3f}).")
    values["seconds"] = round(time.perf_counter() - start, 3)
    return traj, samples, w2_fig, values, note


def floor_text(values: dict) -> str:
    mean, std = values["w2_noise_floor"]
    return f"{mean:.3g} ± {std:.2g} (the noise floor at {values['points']} points)"


ENDPOINT = w.Endpoint(compute, SPECS, api_name=API_NAME, plot_format="png")

READING = f"""
**How to read the pictures.**
*Trajectories* (left): the first {FAN} runs, coloured by t (yellow at the prior, purple at the
data); **grey dots** are their starts (x at the grid's first time), **black dots** every end
point, i.e. the samples. They are drawn in the scaled variable x_t / sqrt(alpha_t^2 + sigma_t^2):
on VP paths that is x_t itself, while on VE and EDM (sigma up to 80) it brings the start, of
size ~80, to unit scale, so every path fits the same axes and ends on the data.
*W2 against NFE* (bottom): for *one Gaussian* the curves are the **exact** W2 of each solver's
output law (no Monte Carlo); the legend's order is minus the log-log slope of each curve between
its last two points (16 and 32 steps), the end where the error expansion holds best (lesson 06
measures orders at 40 and 80 steps). For a mixture the curves are **estimates**: optimal
transport between {CURVE_POINTS} outputs and {CURVE_POINTS} fresh data points. The dotted line
in the grey band (±2 sd) is their noise floor, what an exact sampler scores; a curve that
reaches it has converged as far as this estimate can see, a value below it is noise (not better
than exact), and no order is quoted.
*heun's jump at 2 steps*: with 2 steps the first step spans almost the whole noise range (on the
logsnr grid of vp-linear, sigma/alpha from 152 to 0.002). Heun averages the slope at both ends of
a step, and the end slope, (y - D(y)) / 0.002, is multiplied by the whole step length: a small
error of the Euler predictor is amplified about 40,000 times. With 1 step it makes one Euler
call (no corrector); from about 8 steps on the step sizes are small enough for second order to
show. euler-maruyama jumps at 2 steps for the same reason (one huge stochastic step).
"""


def build() -> None:
    """Lay out the tab inside the current ``gr.Blocks``/``gr.Tab`` context and wire its events."""
    first = ENDPOINT.default_view()
    gr.Markdown(
        "Sample 2D data with any solver and an **exact denoiser** (closed-form Tweedie for a "
        "Gaussian mixture), starting from the exact law of x_t at the grid's first time: what "
        "separates the samples from the data is the solver's discretisation error. "
        "**W2:** exact for *one Gaussian* (a run is an affine map of its start, so its output "
        "law is closed form); for a mixture an optimal-transport estimate from samples, drawn "
        f"with its noise floor. Bounds: steps 1-{MAX_STEPS}, points {MIN_POINTS}-{MAX_POINTS}, "
        f"seed 0-{MAX_SEED}.")
    with gr.Row():
        inputs = {"path": SPECS[0].dropdown(elem_id="samplers-path"),
                  "solver": SPECS[1].dropdown(elem_id="samplers-solver"),
                  "grid": SPECS[2].dropdown(elem_id="samplers-grid"),
                  "data": SPECS[5].dropdown(elem_id="samplers-data")}
    with gr.Row():
        inputs["steps"] = SPECS[3].slider(elem_id="samplers-steps")
        inputs["points"] = SPECS[4].slider(elem_id="samplers-points")
        inputs["seed"] = SPECS[6].number(elem_id="samplers-seed")
    with gr.Row():
        traj_out = gr.Plot(first[0], label="trajectories", show_label=False, format="png",
                           elem_id="samplers-trajectories")
        samples_out = gr.Plot(first[1], label="samples on the exact density", show_label=False,
                              format="png", elem_id="samplers-samples")
    with gr.Row():
        with gr.Column(scale=3, min_width=560):
            w2_out = gr.Plot(first[2], label="W2 against NFE", show_label=False,
                             format="png", elem_id="samplers-w2")
        with gr.Column(scale=2, min_width=320):
            note = gr.Markdown(first[4], label="note", elem_id="samplers-note")
            values_out = gr.JSON(first[3], label="this run", max_height=360,
                                 elem_id="samplers-values")
    with gr.Accordion("How to read these pictures", open=False, elem_id="samplers-reading"):
        gr.Markdown(READING)
    ENDPOINT.wire(inputs, [traj_out, samples_out, w2_out, values_out, note])
