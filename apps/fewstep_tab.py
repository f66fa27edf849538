"""Demo tab "Few-step": the shipped gmm8 flow map and consistency model against their teacher.

The teacher is the exact flow of the ``gmm8`` mixture (``diffkit.data.toy_mixture``) on the
``linear`` path; the few-step networks were distilled from it (``python -m diffkit.fewstep``,
``diffkit.fewstep.load_pretrained``). For a chosen number of calls the tab draws the model's
samples, the teacher's Euler samples at the same number of calls, and the teacher at 100 calls,
and reports each cloud's W2 to fresh data by exact optimal transport between point clouds
(``diffkit.metrics.w2_empirical``) with the data-against-data floor.

Bounds: steps in 1..8, points in 100..600, seed in 0..999; model from a fixed list. About a
second per interaction on a CPU; every answer is cached.
"""

from __future__ import annotations

import functools

import gradio as gr
import torch
from matplotlib.figure import Figure

from apps import widgets as w
from diffkit import data, fewstep, metrics, paths, sample

TITLE = "Few-step"
API_NAME = "fewstep"
MODELS = ("flow map", "consistency")
DEFAULT = {"model": "flow map", "steps": 2, "points": 400, "seed": 0}
PATH = fewstep.PRETRAINED_PATH
MANY = 100


@functools.cache
def models():
    """The shipped networks, loaded once."""
    fm, cm = fewstep.load_pretrained()
    return {"flow map": fm, "consistency": cm}


MIX = data.toy_mixture("gmm8")


@functools.lru_cache(maxsize=32)
def _reference(points: int, seed: int):
    """What does not depend on the model or the steps, per (points, seed): the prior draws, the
    teacher at ``MANY`` calls with its W2, fresh data and the data-against-data W2."""
    gen = torch.Generator().manual_seed(seed)
    z = paths.get(PATH).prior((points, 2), generator=gen, dtype=torch.float32)
    many = sample(MIX.denoiser(PATH), PATH, z.double(), solver="dpm++2m", steps=MANY).x.float()
    ref = MIX.sample(points, gen).float()
    floor = metrics.w2_empirical(MIX.sample(points, gen).float(), ref)
    return z, many, ref, metrics.w2_empirical(many, ref), floor


def compute(model, steps, points, seed):
    """``(figure, values)``: the three clouds and their W2 to fresh data."""
    z, many, ref, w2_many, floor = _reference(points, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    net = models()[model]
    if model == "flow map":
        ours = fewstep.flow_map_sample(net, PATH, z, steps)
    else:
        ours = fewstep.consistency_sample(net, PATH, z, steps, generator=gen)
    same = sample(MIX.denoiser(PATH), PATH, z.double(), solver="euler", steps=steps).x.float()
    clouds = {f"{model}, {steps} call(s)": ours, f"teacher (euler), {steps} call(s)": same,
              f"teacher (dpm++2m), {MANY} calls": many}
    w2 = {name: metrics.w2_empirical(x, ref) for name, x in list(clouds.items())[:2]}
    w2[f"teacher (dpm++2m), {MANY} calls"] = w2_many
    fig = Figure(figsize=(12, 4), dpi=110)
    for ax, (name, x) in zip(fig.subplots(1, 3), clouds.items()):
        ax.scatter(*x.T.numpy(), s=3, alpha=0.5)
        ax.set_title(f"{name}\nW2 to data {w2[name]:.3f}", fontsize=9)
        ax.set_xlim(-3.2, 3.2)
        ax.set_ylim(-3.2, 3.2)
        ax.set_aspect("equal")
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
    fig.tight_layout()
    values = {"model": model, "steps": steps, "points": points, "seed": seed,
              "w2": {k: round(v, 4) for k, v in w2.items()},
              "w2_data_vs_data": round(floor, 4)}
    return fig, values


SPECS = (
    w.Choice("model", MODELS, DEFAULT["model"], label="few-step model"),
    w.Numeric("steps", 1, 8, DEFAULT["steps"], integer=True, label="network calls"),
    w.Numeric("points", 100, 600, DEFAULT["points"], integer=True, label="points"),
    w.Numeric("seed", 0, 999, DEFAULT["seed"], integer=True, label="seed"),
)
ENDPOINT = w.Endpoint(compute, SPECS, api_name=API_NAME)


def build() -> None:
    """Lay out the tab and wire its events (default view computed once, at start)."""
    first = ENDPOINT.default_view()
    gr.Markdown(
        "A flow map X(x, s, t) jumps along the probability-flow ODE in one call; a consistency "
        "model jumps to the data and re-noises. Both were distilled from the exact flow of the "
        "8-component mixture gmm8. Compare them with the teacher at the same number of calls "
        f"and at {MANY} calls; W2 is exact optimal transport between the clouds and fresh data.")
    with gr.Row():
        inputs = {"model": SPECS[0].dropdown(elem_id="fewstep-model"),
                  "steps": SPECS[1].slider(elem_id="fewstep-steps"),
                  "points": SPECS[2].slider(elem_id="fewstep-points"),
                  "seed": SPECS[3].number(elem_id="fewstep-seed")}
    plot = gr.Plot(first[0], show_label=False, elem_id="fewstep-plot")
    values = gr.JSON(first[1], label="W2 to data", elem_id="fewstep-values")
    ENDPOINT.wire(inputs, [plot, values])
