"""Demo tab "Samplers": run any solver of ``diffkit.samplers`` with an exact denoiser on 2D data
and see its trajectories, its final samples on the true density, and its exact W2 against NFE.

What is exact here:

* the denoiser ``D(x, t) = E[x0 | x_t = x]`` of every data preset (Gaussian mixtures: Tweedie's
  formula in closed form, ``diffkit.analytic``), and the start of every run (drawn from the exact
  marginal of the data at the grid's first time), so what differs from the data is the solver's
  discretisation error, plus Monte-Carlo noise in the picture;
* the W2 curve: for Gaussian data a run is an affine map of its start (and of its noise), so its
  output law is an exact Gaussian (``diffkit.samplers.sampler_law``) and its W2 to the data is
  exact. For a mixture preset the curve is that of the Gaussian with the mixture's mean and
  covariance (``diffkit.viz.samplers.matched_gaussian``); for the "one Gaussian" preset it is the
  exact error of the very runs shown.

Bounds: ``steps`` in 1..``MAX_STEPS``, ``points`` in ``MIN_POINTS``..``MAX_POINTS``, ``seed`` in
0..``MAX_SEED``, every other input from a fixed list; the endpoint rejects anything else.
One interaction costs about a second on a CPU; the W2 curves are computed once per
(path, grid, data) and cached.
"""

from __future__ import annotations

import functools
import math
import time

import gradio as gr
import torch

from apps.paths_tab import PRESETS as MIXTURES
from diffkit import analytic, paths
from diffkit.viz import samplers as vs
from diffkit.samplers import available, info, sample

TITLE = "Samplers"
API_NAME = "samplers"
MAX_STEPS = 100
MIN_POINTS, MAX_POINTS = 16, 512
MAX_SEED = 9999
FAN = 96  # trajectories drawn as lines (all end points are drawn)
#: step counts of the W2 curves (each solver's NFE follows from them)
CURVE_STEPS = (1, 2, 4, 8, 16, 32)
SOLVERS = available()
#: solvers with an exact output law on Gaussian data (``adaptive`` picks its steps from the state)
EXACT_SOLVERS = tuple(s for s in SOLVERS if info(s).affine)
DEFAULT = {"path": "vp-linear", "solver": "euler", "grid": "logsnr", "steps": 10,
           "points": 256, "data": "ring of eight", "seed": 0}
F64 = torch.float64

GAUSSIAN = "one Gaussian"
DATA_NAMES = tuple(MIXTURES) + (GAUSSIAN,)


@functools.cache
def data(name: str):
    """The 2D data preset ``name`` (one of ``DATA_NAMES``), built once: a Gaussian mixture, or the
    Gaussian ``GAUSSIAN`` whose W2 curve is the exact error of the runs shown."""
    if name == GAUSSIAN:
        return analytic.Gaussian(torch.tensor([0.8, -0.4], dtype=F64),
                                 torch.tensor([[0.6, 0.35], [0.35, 0.4]], dtype=F64))
    if name not in MIXTURES:
        raise ValueError(f"data must be one of {', '.join(DATA_NAMES)}; got {name!r}")
    return MIXTURES[name]()


@functools.lru_cache(maxsize=64)
def w2_curves(path_name: str, grid: str, data_name: str) -> dict[str, tuple[tuple, tuple]]:
    """Exact W2 against NFE for every solver with an exact law, at ``CURVE_STEPS`` steps of
    ``grid`` on ``path_name``, for the Gaussian matched to ``data_name``; cached."""
    gauss = vs.matched_gaussian(data(data_name))
    curves = {}
    for solver in EXACT_SOLVERS:
        nfe, w2 = [], []
        for n in CURVE_STEPS:
            a, b = vs.w2_vs_nfe(solver, path_name, gauss, [n], grid)
            nfe.append(a[0])
            w2.append(b[0])
        curves[solver] = (tuple(nfe), tuple(w2))
    return curves


def _choice(value, allowed, name):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _integer(value, lo: int, hi: int, name: str) -> int:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}]; got {value!r}") from None
    if not (math.isfinite(v) and v == int(v) and lo <= v <= hi):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}]; got {value!r}")
    return int(v)


def run(path_name: str, solver: str, grid: str, steps, points, data_name: str, seed=0):
    """One bounded run, without drawing: ``(result, values)``.

    ``result`` is the :class:`diffkit.samplers.SampleResult` (with its trajectory) of ``solver``
    on ``grid`` with ``steps`` steps from ``points`` draws of the exact marginal at the grid's
    first time; ``values`` the figures the tab reports (NFE, exact W2 of the matched Gaussian, the
    sample moments next to the exact ones).
    """
    path_name = _choice(path_name, paths.NAMES, "path")
    solver = _choice(solver, SOLVERS, "solver")
    grid = _choice(grid, paths.GRIDS, "grid")
    steps = _integer(steps, 1, MAX_STEPS, "steps")
    points = _integer(points, MIN_POINTS, MAX_POINTS, "points")
    seed = _integer(seed, 0, MAX_SEED, "seed")
    dist = data(data_name)
    path = paths.get(path_name)
    ts = paths.grid(grid, steps, path)
    gen = torch.Generator().manual_seed(seed)
    x_start = dist.marginal(float(ts[0]), path).sample(points, generator=gen)
    res = sample(dist.denoiser(path), path, x_start, solver=solver, grid=ts, generator=gen,
                 return_trajectory=True)

    gauss = vs.matched_gaussian(dist)
    w2 = vs.exact_w2(solver, path, gauss, grid=ts) if info(solver).affine else None
    mean = res.x.mean(0)
    values = {
        "path_name": path_name,  # not "path": gradio_client takes {"path": ...} for a file
        "solver": solver,
        "grid": grid,
        "steps": steps,
        "nfe": res.nfe,
        "points": points,
        "seed": seed,
        "data": data_name,
        "t_start": float(ts[0]),
        "w2_exact": w2,
        "w2_of": ("the data itself" if isinstance(dist, analytic.Gaussian)
                  else "the Gaussian with the data's mean and covariance"),
        "sample_mean": [float(v) for v in mean],
        "exact_mean": [float(v) for v in gauss.mean],
        "sample_cov": [[float(v) for v in row] for row in torch.cov(res.x.T)],
        "exact_cov": [[float(v) for v in row] for row in gauss.cov],
    }
    return res, values


def compute(path_name: str, solver: str, grid: str, steps, points, data_name: str, seed=0):
    """The tab's one endpoint: ``(trajectories, samples, W2-vs-NFE figures, values, note)``."""
    start = time.perf_counter()
    res, values = run(path_name, solver, grid, steps, points, data_name, seed)
    dist = data(values["data"])
    path = paths.get(values["path_name"])
    title = f"{solver}, {values['steps']} steps on {grid}, NFE {res.nfe}"
    traj = vs.plot_trajectories(res.xs, res.ts, path, max_paths=FAN, title=title)
    samples = vs.plot_samples(res.x, dist, title=f"{values['points']} samples on the exact density")
    curves = w2_curves(values["path_name"], values["grid"], values["data"])
    w2 = values["w2_exact"]
    w2_fig = vs.plot_w2_vs_nfe(
        curves, highlight=solver if solver in curves else None,
        point=(res.nfe, w2) if w2 is not None else None,
        title=f"exact W2 vs NFE ({path.name}, {grid} grid)")
    # two flat tables (the JSON viewer collapses deeper nesting): NFE and exact W2 per solver
    values["curve_nfe"] = {k: list(v[0]) for k, v in curves.items()}
    values["curve_w2"] = {k: list(v[1]) for k, v in curves.items()}
    if w2 is None:
        exact = (f"{solver} picks its own steps from the state, so its output law has no closed "
                 f"form: no exact W2 for it (the curves show the other solvers).")
    else:
        exact = (f"exact W2 of this run's law to {values['w2_of']}: **{w2:.3g}**.")
    note = (f"**{solver}**: {res.nfe} denoiser calls (NFE) for {values['steps']} steps. {exact} "
            f"Sample mean ({values['sample_mean'][0]:.3f}, {values['sample_mean'][1]:.3f}) vs "
            f"exact ({values['exact_mean'][0]:.3f}, {values['exact_mean'][1]:.3f}).")
    values["seconds"] = round(time.perf_counter() - start, 3)
    return traj, samples, w2_fig, values, note


def _endpoint(path_name, solver, grid, steps, points, data_name, seed):
    try:
        return compute(path_name, solver, grid, steps, points, data_name, seed)
    except ValueError as err:  # bad input: shown to the user, returned to API callers as an error
        raise gr.Error(str(err)) from None


def build() -> None:
    """Lay out the tab inside the current ``gr.Blocks``/``gr.Tab`` context and wire its events."""
    w2_curves(DEFAULT["path"], DEFAULT["grid"], DEFAULT["data"])  # warm the cache
    first = compute(*(DEFAULT[k] for k in ("path", "solver", "grid", "steps", "points", "data",
                                           "seed")))
    gr.Markdown(
        "Sample 2D data with any solver and an **exact denoiser** (closed-form Tweedie for a "
        "Gaussian mixture), starting from the exact law of x_t at the grid's first time: what "
        "separates the samples from the data is the solver's discretisation error. "
        "**What is exact:** the W2 curves. For Gaussian data a run is an affine map of its "
        "start, so its output law and its W2 distance to the data are closed form (no Monte "
        "Carlo); for a mixture the curves are those of the Gaussian with the mixture's mean and "
        "covariance, for *one Gaussian* they are the error of the runs shown. "
        f"Bounds: steps 1-{MAX_STEPS}, points {MIN_POINTS}-{MAX_POINTS}, seed 0-{MAX_SEED}.")
    with gr.Row():
        path_in = gr.Dropdown(list(paths.NAMES), value=DEFAULT["path"], label="path")
        solver_in = gr.Dropdown(list(SOLVERS), value=DEFAULT["solver"], label="solver",
                                elem_id="samplers-solver")
        grid_in = gr.Dropdown(list(paths.GRIDS), value=DEFAULT["grid"], label="time grid")
        data_in = gr.Dropdown(list(DATA_NAMES), value=DEFAULT["data"], label="data (2D)")
    with gr.Row():
        steps_in = gr.Slider(1, MAX_STEPS, value=DEFAULT["steps"], step=1, label="steps",
                             info=f"bounded to 1..{MAX_STEPS}; NFE = steps x calls per step "
                                  "(2 for heun and pc, 4 for rk4)",
                             elem_id="samplers-steps")
        points_in = gr.Slider(MIN_POINTS, MAX_POINTS, value=DEFAULT["points"], step=16,
                              label="points", info=f"bounded to {MIN_POINTS}..{MAX_POINTS}; "
                                                   f"{FAN} trajectories drawn",
                              elem_id="samplers-points")
        seed_in = gr.Number(DEFAULT["seed"], label="seed", minimum=0, maximum=MAX_SEED,
                            precision=0, info=f"0..{MAX_SEED}", elem_id="samplers-seed")
    with gr.Row():
        traj_out = gr.Plot(first[0], label="trajectories", show_label=False, format="png",
                           elem_id="samplers-trajectories")
        samples_out = gr.Plot(first[1], label="samples on the exact density", show_label=False,
                              format="png", elem_id="samplers-samples")
    with gr.Row():
        with gr.Column(scale=3):
            w2_out = gr.Plot(first[2], label="exact W2 against NFE", show_label=False,
                             format="png", elem_id="samplers-w2")
        with gr.Column(scale=2):
            note = gr.Markdown(first[4], elem_id="samplers-note")
            values_out = gr.JSON(first[3],
                                 label="this run", max_height=360, elem_id="samplers-values")
    inputs = [path_in, solver_in, grid_in, steps_in, points_in, data_in, seed_in]
    gr.on(
        triggers=[c.change for c in inputs],
        fn=_endpoint,
        inputs=inputs,
        outputs=[traj_out, samples_out, w2_out, values_out, note],
        api_name=API_NAME,
        trigger_mode="always_last",
    )
