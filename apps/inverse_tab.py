"""Demo tab "Inverse problems": inpainting a held-out 8x8 digit with the shipped digits model.

A test digit (by its index in the test split) is partly hidden, by a preset mask
(``diffkit.inverse.digit_masks``) or by a mask the user paints in an image editor (the digit
shown 32 times larger; a painted 32x32 block hides its pixel). The hidden pixels are completed by
replacement (RePaint, optionally with resampling) and by DPS (``diffkit.inverse.inpaint_digits``,
the model's unconditional denoiser: the label is not told), ``SAMPLES`` completions each, side by
side; the shipped classifier reads each completion (green frame: the true digit, red: another).

Bounds (``SPECS``, through ``apps.widgets``): ``index`` in 0..358, ``steps`` in 2..``MAX_STEPS``,
``jumps`` in 1..``MAX_JUMPS``, ``seed`` in 0..``MAX_SEED``, the mask from a fixed list, the drawn
mask a string of 64 characters ``0``/``1`` (``1`` = hidden, row by row) that hides at most 63
pixels. The largest run (replacement at ``MAX_STEPS`` steps and ``MAX_JUMPS`` jumps, DPS at
``MAX_STEPS``) costs about a second on a CPU; the same inputs give the same answer (cached).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import gradio as gr
import numpy as np
import torch

from apps import widgets as w
from diffkit import data, inverse, pretrained
from diffkit.viz import control as vc

TITLE = "Inverse problems"
API_NAME = "inverse"
PLOT_FORMAT = "png"
N_TEST = 359  # the digits test split
MAX_STEPS = 40
MAX_JUMPS = 4
MAX_SEED = 9999
SAMPLES = 4  # completions per method
SCALE = 32  # editor pixels per digit pixel
DRAWN = "drawn"
MASKS = tuple(inverse.digit_masks()) + (DRAWN,)
NOTHING_HIDDEN = "0" * 64
DEFAULT = {"index": 3, "mask": "right half", "drawn": NOTHING_HIDDEN, "steps": 20, "jumps": 1, "seed": 0}


@dataclass(frozen=True)
class MaskBits:
    """A drawn mask as text: 64 characters ``0`` (seen) or ``1`` (hidden), row by row, hiding at
    most 63 pixels (something must be seen). Anything else is refused, in one plain sentence."""

    name: str
    default: str
    label: str | None = None

    def check(self, value, clamp: bool = True) -> tuple[str, str]:
        if isinstance(value, str):
            value = value.strip()
        if not isinstance(value, str) or len(value) != 64 or set(value) - {"0", "1"}:
            raise w.Rejected(f"{self.name} must be 64 characters 0 or 1 (1 = hidden, row by row); "
                             f"got {w._shown(value) if not isinstance(value, str) else repr(value[:70])}")
        if "0" not in value:
            raise w.Rejected(f"{self.name} hides every pixel; keep at least one seen")
        return value, ""

    def textbox(self, **kwargs) -> gr.Textbox:
        kw = dict(value=self.default, label=self.label or self.name, max_lines=1,
                  info="64 characters, 1 = hidden, row by row (the painted mask lands here)")
        kw.update(kwargs)
        return gr.Textbox(**kw)  # no check of its own: every value reaches :meth:`check`


def bits_to_mask(bits: str) -> torch.Tensor:
    """The boolean ``[8, 8]`` mask (true = seen) of a validated bit string."""
    return torch.tensor([c == "0" for c in bits], dtype=torch.bool).reshape(8, 8)


def mask_to_bits(mask: torch.Tensor) -> str:
    return "".join("0" if bool(v) else "1" for v in mask.reshape(-1))


@functools.cache
def classifier() -> torch.nn.Module:
    """The shipped digits classifier (eval mode), loaded once."""
    return pretrained.load("digits-classifier").net.eval()


@functools.cache
def test_digits() -> tuple[torch.Tensor, torch.Tensor]:
    return data.digits("test")


def compute(index: int, mask: str, drawn: str, steps: int, jumps: int, seed: int):
    """``(figure, values, note)`` for validated inputs: ``SAMPLES`` completions of test digit
    ``index`` by each method."""
    start = time.perf_counter()
    x, y = test_digits()
    image, label = x[index: index + 1].expand(SAMPLES, 1, 8, 8).clone(), int(y[index])
    labels = torch.full((SAMPLES,), label, dtype=torch.int64)
    seen = bits_to_mask(drawn) if mask == DRAWN else inverse.digit_masks()[mask]
    runs = {"replacement": inverse.inpaint_digits(image, seen, "replacement", steps, labels=labels,
                                                  jumps=jumps, seed=seed),
            "DPS": inverse.inpaint_digits(image, seen, "dps", steps, labels=labels, seed=seed)}
    hidden = int((~seen).sum())
    rows = [runs[k]["x"] for k in runs]
    fig = vc.plot_inpainting(
        torch.cat([image[:1]] * 2), seen,
        {f"completion {j + 1}": torch.stack([r[j] for r in rows]) for j in range(SAMPLES)},
        predicted={f"completion {j + 1}": torch.stack([runs[k]["predicted"][j] for k in runs])
                   for j in range(SAMPLES)},
        labels=torch.full((2,), label), row_titles=["replacement", "DPS"],
        title=f"test digit {index} (label {label}), {hidden} of 64 pixels hidden")
    values = {"index": index, "label": label, "mask": mask, "hidden": hidden, "steps": steps, "jumps": jumps,
              "seed": seed}
    for name, r in runs.items():
        key = name.lower()
        values[key] = {"nfe": r["nfe"], "predicted": r["predicted"].tolist(), "accuracy": r["accuracy"],
                       "mse": None if hidden == 0 else round(r["mse"], 4)}
    with torch.no_grad():  # the classifier on what is seen (hidden pixels at the background)
        values["seen_alone_predicted"] = int(classifier()(runs["replacement"]["observed"][:1]).argmax(1))
    note = (f"Digit **{label}** with {hidden} of 64 pixels hidden. The classifier reads the label in "
            f"**{sum(int(v == label) for v in values['replacement']['predicted'])}/{SAMPLES}** "
            f"replacement completions ({runs['replacement']['nfe']} denoiser calls) and "
            f"**{sum(int(v == label) for v in values['dps']['predicted'])}/{SAMPLES}** DPS completions "
            f"({runs['DPS']['nfe']} calls, each with a backward pass). Orange: hidden pixels.")
    values["seconds"] = round(time.perf_counter() - start, 3)
    return fig, values, note


SPECS = (
    w.Numeric("index", 0, N_TEST - 1, DEFAULT["index"], integer=True, label="test digit (index)"),
    w.Choice("mask", MASKS, DEFAULT["mask"], label="hidden part",
             info="a preset, or 'drawn': the pixels painted in the editor"),
    MaskBits("drawn", DEFAULT["drawn"], label="drawn mask"),
    w.Numeric("steps", 2, MAX_STEPS, DEFAULT["steps"], integer=True, label="steps",
              info="denoiser calls: DPS = steps, replacement = (steps - 1) x jumps + 1"),
    w.Numeric("jumps", 1, MAX_JUMPS, DEFAULT["jumps"], integer=True, label="replacement: resamplings per step"),
    w.Numeric("seed", 0, MAX_SEED, DEFAULT["seed"], integer=True, label="seed"),
)
ENDPOINT = w.Endpoint(compute, SPECS, api_name=API_NAME, plot_format=PLOT_FORMAT)


def editor_value(index: int) -> dict:
    """The editor's content for test digit ``index``: the digit, black on white, ``SCALE`` times
    larger (RGBA), with no painted layer."""
    x, _ = test_digits()
    grey = (255 * (1 - (x[index, 0].numpy() + 1) / 2)).clip(0, 255).astype(np.uint8)
    big = np.kron(grey, np.ones((SCALE, SCALE), dtype=np.uint8))
    rgba = np.dstack([big, big, big, np.full_like(big, 255)])
    return {"background": rgba, "layers": [], "composite": rgba}


def painted_bits(value) -> str | None:
    """The drawn mask of an editor value: a digit pixel is hidden when a fifth or more of its
    ``SCALE x SCALE`` block is painted (any layer's alpha); ``None`` when nothing is painted."""
    if not isinstance(value, dict):
        return None
    layers = [np.asarray(a) for a in (value.get("layers") or []) if a is not None]
    if not layers:
        return None
    alpha = np.zeros((8 * SCALE, 8 * SCALE), dtype=float)
    for a in layers:
        if a.ndim != 3 or a.shape[2] < 4:
            continue
        a = a[: 8 * SCALE, : 8 * SCALE, 3].astype(float) / 255.0
        alpha[: a.shape[0], : a.shape[1]] = np.maximum(alpha[: a.shape[0], : a.shape[1]], a)
    covered = alpha.reshape(8, SCALE, 8, SCALE).mean(axis=(1, 3)) >= 0.2
    if not covered.any():
        return None
    return "".join("1" if v else "0" for v in covered.reshape(-1))


def build() -> None:
    """Lay out the tab and wire its events (the default view is computed once, at start)."""
    first = ENDPOINT.default_view()
    gr.Markdown(
        "**Inpainting** a held-out 8x8 digit with the shipped digits model, which is *not* told the "
        "label: the hidden pixels (a preset, or paint them on the digit below) are completed by "
        "**replacement** (RePaint: after each step the seen pixels are put back, noised to the "
        "step's level; resampling repeats each step) and by **DPS** (the gradient of the misfit "
        "of the denoised estimate added to the score). The shipped classifier reads each "
        "completion: green frame = the true digit, red = another.")
    with gr.Row():
        inputs = {"index": SPECS[0].slider(elem_id="inverse-index"),
                  "mask": SPECS[1].dropdown(elem_id="inverse-mask"),
                  "steps": SPECS[3].slider(elem_id="inverse-steps"),
                  "jumps": SPECS[4].slider(elem_id="inverse-jumps"),
                  "seed": SPECS[5].number(elem_id="inverse-seed")}
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            editor = gr.ImageEditor(
                editor_value(DEFAULT["index"]), label="paint the pixels to hide", sources=(), transforms=(),
                layers=gr.LayerOptions(allow_additional_layers=False, layers=["hidden pixels"]),
                canvas_size=(8 * SCALE, 8 * SCALE), fixed_canvas=True, image_mode="RGBA",
                brush=gr.Brush(default_size=SCALE, colors=["#ff8c00"], color_mode="fixed"),
                height=8 * SCALE + 110, elem_id="inverse-editor")
            with gr.Accordion("drawn mask as text", open=False):
                inputs["drawn"] = SPECS[2].textbox(elem_id="inverse-drawn")
        with gr.Column(scale=2):
            plot = gr.Plot(first[0], show_label=False, format=PLOT_FORMAT, elem_id="inverse-plot")
            note = gr.Markdown(first[2], elem_id="inverse-note")
    values = gr.JSON(first[1], label="this run", max_height=320, elem_id="inverse-values")
    outputs = [plot, values, note]
    ENDPOINT.wire(inputs, outputs)
    page = ENDPOINT.page_function(inputs)
    comps = [inputs[n] for n in ENDPOINT.names]
    n_out = len(outputs)
    i_mask, i_drawn = ENDPOINT.names.index("mask"), ENDPOINT.names.index("drawn")

    def from_drawing(value, *args):
        bits = painted_bits(value)
        if bits is None:
            return [gr.skip()] * (n_out + len(comps) + 1)
        if "0" not in bits:
            gr.Warning("the painted mask hides every pixel; keep at least one seen")
            return [gr.skip()] * (n_out + len(comps) + 1)
        raw = list(args)
        raw[i_mask], raw[i_drawn] = DRAWN, bits
        out = page(*raw)
        out[n_out + i_mask], out[n_out + i_drawn] = DRAWN, bits
        return out

    # painting fires the editor's ``input`` (not ``change``); with no layer (``layers=False``)
    # the brush draws nothing at all, hence the one fixed layer above
    editor.input(from_drawing, inputs=[editor] + comps + [ENDPOINT._state],
                  outputs=outputs + comps + [ENDPOINT._state], api_visibility="private",
                  trigger_mode="always_last", show_progress="minimal")
    inputs["index"].input(lambda i: editor_value(int(i)) if isinstance(i, (int, float)) and 0 <= i < N_TEST
                          and float(i).is_integer() else gr.skip(), inputs=inputs["index"], outputs=editor,
                          api_visibility="private")
