"""Demo tab "Digits": class-conditional 8x8 digits from the shipped UNet (``diffkit.pretrained``
``"digits"``), sampled with any of several solvers at any number of steps, each sample framed by
the verdict of the shipped classifier (``"digits-classifier"``): green when it reads the asked-for
digit, red when it reads another (its reading in the corner).

Bounds (``SPECS``, through ``apps.widgets``: clamped in the page, refused by the API, said in the
UI): ``digit`` in 0..9, ``steps`` in 1..``MAX_STEPS``, ``rows`` in 1..``MAX_ROWS`` (``COLUMNS``
samples each), ``seed`` in 0..``MAX_SEED``, the solver from a fixed list. The largest run
(``MAX_ROWS * COLUMNS`` samples, heun at ``MAX_STEPS`` steps) costs about a second on a CPU; the
same inputs give the same samples (cached).
"""

from __future__ import annotations

import functools
import time

import gradio as gr
import torch

from apps import widgets as w
from diffkit import paths, pretrained
from diffkit import sample as run_sampler
from diffkit.viz import learning as vl

TITLE = "Digits"
API_NAME = "digits"
PLOT_FORMAT = "png"
SOLVERS = ("dpm++2m", "ddim", "euler", "heun", "dpm++3m", "ddpm")
MAX_STEPS = 20
COLUMNS = 8
MAX_ROWS = 4
MAX_SEED = 9999
DEFAULT = {"digit": 3, "solver": "dpm++2m", "steps": 12, "rows": 3, "seed": 0}


@functools.cache
def model():
    """The shipped class-conditional digits UNet, loaded once."""
    return pretrained.load("digits")


@functools.cache
def classifier() -> torch.nn.Module:
    """The shipped digits classifier (eval mode), loaded once."""
    return pretrained.load("digits-classifier").net.eval()


def generate(digit: int, solver: str, steps: int, count: int, seed: int):
    """``(images [count, 1, 8, 8] in [-1, 1], predicted [count], nfe)``: ``count`` samples of
    ``digit`` from the prior draws of ``seed``, and the classifier's reading of each."""
    m = model()
    path = paths.get(m.config["path"])
    labels = torch.full((count,), digit, dtype=torch.int64)
    x1 = path.prior((count, 1, 8, 8), generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
    res = run_sampler(m.denoiser(labels=labels), path, x1, solver=solver, steps=steps, grid="logsnr",
                      generator=torch.Generator().manual_seed(seed + 1))
    images = res.x.clamp(-1.0, 1.0)
    with torch.no_grad():
        predicted = classifier()(images).argmax(1)
    return images, predicted, res.nfe


def compute(digit: int, solver: str, steps: int, rows: int, seed: int = 0):
    """``(grid figure, values, note)`` for validated inputs (``SPECS``; the endpoint validates and
    caches): ``rows * COLUMNS`` samples of ``digit``."""
    start = time.perf_counter()
    count = rows * COLUMNS
    images, predicted, nfe = generate(digit, solver, steps, count, seed)
    correct = int((predicted == digit).sum())
    accuracy = correct / count
    fig = vl.plot_digit_grid(images, labels=torch.full((count,), digit), predicted=predicted, ncols=COLUMNS,
                             title=f"digit {digit}: {solver}, {steps} steps (NFE {nfe}); "
                                   f"the classifier reads {correct}/{count} as {digit}", scale=0.7)
    counts = torch.bincount(predicted, minlength=10).tolist()
    values = {"digit": digit, "solver": solver, "steps": steps, "nfe": nfe, "rows": rows, "count": count, "seed": seed,
              "accuracy": accuracy, "predicted": predicted.tolist(), "predicted_counts": counts,
              "shipped_accuracy": model().metrics.get("accuracy")}
    others = ", ".join(f"{k} ({n})" for k, n in enumerate(counts) if n and k != digit) or "none"
    note = (f"The classifier reads **{correct} of {count}** samples as **{digit}** "
            f"(accuracy {accuracy:.0%}); other readings: {others}. Green frame: read as asked; "
            f"red: read as the digit in its corner.")
    values["seconds"] = round(time.perf_counter() - start, 3)
    return fig, values, note


#: the tab's inputs, in the order of ``compute``'s parameters (their names are the API's)
SPECS = (
    w.Numeric("digit", 0, 9, DEFAULT["digit"], integer=True, label="digit (class)"),
    w.Choice("solver", SOLVERS, DEFAULT["solver"], label="solver"),
    w.Numeric("steps", 1, MAX_STEPS, DEFAULT["steps"], integer=True, label="steps",
              info="NFE = steps x calls per step (heun: 2 per step but the last)"),
    w.Numeric("rows", 1, MAX_ROWS, DEFAULT["rows"], integer=True, label="rows of samples",
              info=f"{COLUMNS} samples per row"),
    w.Numeric("seed", 0, MAX_SEED, DEFAULT["seed"], integer=True, label="seed"),
)
ENDPOINT = w.Endpoint(compute, SPECS, api_name=API_NAME, plot_format=PLOT_FORMAT)


def build() -> None:
    """Lay out the tab inside the current ``gr.Blocks``/``gr.Tab`` and wire its one endpoint."""
    first = ENDPOINT.default_view()
    gr.Markdown(
        "Class-conditional **8x8 digits** from the shipped UNet (trained on scikit-learn's digits "
        "on a CPU), sampled with a solver and a number of steps of your choice. Each sample is "
        "framed by the verdict of the shipped classifier: **green** when it reads the digit asked "
        "for, **red** when it reads another (shown in the corner).")
    with gr.Row():
        inputs = {"digit": SPECS[0].slider(elem_id="digits-digit"),
                  "solver": SPECS[1].dropdown(elem_id="digits-solver"),
                  "steps": SPECS[2].slider(elem_id="digits-steps")}
    with gr.Row():
        inputs["rows"] = SPECS[3].slider(elem_id="digits-rows")
        inputs["seed"] = SPECS[4].number(elem_id="digits-seed")
    with gr.Row():
        with gr.Column(scale=3):
            grid_out = gr.Plot(first[0], label="samples", show_label=False, format=PLOT_FORMAT, elem_id="digits-grid")
        with gr.Column(scale=2):
            note = gr.Markdown(first[2], elem_id="digits-note")
            values_out = gr.JSON(first[1], label="this run", max_height=320, elem_id="digits-values")
    ENDPOINT.wire(inputs, [grid_out, values_out, note])
