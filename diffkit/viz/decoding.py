"""Pictures of dLLM decoding, shared by lessons 11-13 and the "dLLM decoding" demo tab.

Matplotlib's object interface only (``matplotlib.figure.Figure``, never ``pyplot``), so the demo
hub may draw from several worker threads; each plotting function takes an optional ``ax`` and
returns the ``Figure`` it drew on.

* :func:`unmasking_frames`: a :class:`~diffkit.discrete.DecodeOutput` replayed round by round
  (the sequence after each round, the round in which each position was committed, and the
  model's confidence ``p(x_i | visible)`` in the committed token at that moment).
* :func:`rounds_html` and :func:`plot_unmasking`: that replay as an HTML table and as a
  rounds-by-positions grid coloured by confidence.
* :func:`plot_pareto`: every strategy's *exact* error (total variation to the true law) against
  its expected number of rounds, and the non-dominated ones among them. The numbers come from
  :func:`diffkit.discrete.exact.pareto_points` / :func:`~diffkit.discrete.exact.pareto_front`;
  this module only draws them.
* :func:`token_names`: printable names of an oracle's token ids.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from ..discrete.evaluate import pareto_front
from ..discrete.strategies import available, info

__all__ = ["Frames", "unmasking_frames", "token_names", "rounds_html", "plot_unmasking",
           "plot_pareto", "STRATEGY_COLORS", "MASK_GLYPH"]

MASK_GLYPH = "\u2591"  # a light-shade block stands for the mask token

#: one colour per strategy (from its record), the same in every lesson and in the demo
STRATEGY_COLORS = {name: info(name).color for name in available()}


@dataclass
class Frames:
    """A decode replayed round by round (one sequence of the batch).

    ``states [R + 1, L]``: the sequence before round 1 (all generation positions masked) and after
    each of the ``R`` rounds; ``round_of [L]``: the round (1-based) in which each position was
    committed, 0 for prompt positions; ``confidence [L]``: the model's probability of the committed
    token when it was committed (NaN for the prompt); ``prompt_len``; ``mask_id``."""

    states: Tensor
    round_of: Tensor
    confidence: Tensor
    prompt_len: int
    mask_id: int

    @property
    def rounds(self) -> int:
        return self.states.shape[0] - 1


def unmasking_frames(out, prompt_len: int, mask_id: int, row: int = 0) -> Frames:
    """Replay ``out`` (a :class:`~diffkit.discrete.DecodeOutput`) for batch row ``row``: the final
    tokens restricted to the positions committed in rounds ``1..r`` give the state after round
    ``r`` (committed tokens never change); for remasking rules the recorded sequences after each
    round (``Round.after``), and each position's last commit."""
    final = out.tokens[row].cpu()
    length = final.shape[0]
    round_of = torch.zeros(length, dtype=torch.long)
    conf = torch.full((length,), math.nan, dtype=torch.float64)
    for r, rnd in enumerate(out.history, start=1):
        committed = rnd.committed[row].cpu()
        round_of[committed] = r
        conf[committed] = rnd.confidence[row].cpu().to(torch.float64)[committed]
    rounds = len(out.history)
    steps = torch.arange(rounds + 1).unsqueeze(1)
    generated = torch.arange(length) >= prompt_len
    shown = ~generated | (round_of.unsqueeze(0) <= steps) & (round_of.unsqueeze(0) > 0)
    states = torch.where(shown, final.unsqueeze(0), torch.full_like(final, mask_id))
    if out.history and all(getattr(r, "after", None) is not None for r in out.history):
        states = torch.stack([states[0]] + [r.after[row].cpu() for r in out.history])
    return Frames(states, round_of, conf, int(prompt_len), int(mask_id))


def token_names(oracle) -> list[str]:
    """Printable names of the real token ids of ``oracle``: digits for an HMM's tokens; for a
    list task (:class:`~diffkit.discrete.Task`) digits for items, ``@j`` for position tokens and
    the task's name for its task token."""
    v = int(oracle.vocab_size)
    symbols = getattr(oracle, "symbols", None)
    if symbols is None:
        return [str(i) for i in range(v)]
    from ..discrete.tasks import TASKS
    length = oracle.length
    return ([str(i) for i in range(symbols)] + [f"@{j}" for j in range(length)] + list(TASKS))[:v]


def _conf_colour(c: float) -> str:
    """White (confidence 0) to saturated green (confidence 1), as a CSS colour."""
    c = 0.0 if math.isnan(c) else min(max(c, 0.0), 1.0)
    r, g, b = (int(round(255 - c * (255 - x))) for x in (44, 160, 44))
    return f"rgb({r},{g},{b})"


def rounds_html(frames: Frames, names: Optional[Sequence[str]] = None, upto: Optional[int] = None,
                total_correlation: Optional[Sequence[float]] = None) -> str:
    """An HTML table: one row per round ``0..upto`` (default: all), one column per position. A
    token committed in that row's round is bold on a green cell whose saturation is its
    confidence (printed beneath it); masked positions show ``MASK_GLYPH``. With
    ``total_correlation`` (nats, one per round) a last column gives each round's TC."""
    names = list(names) if names is not None else None
    upto = frames.rounds if upto is None else max(0, min(int(upto), frames.rounds))
    length = frames.states.shape[1]

    def name(t: int) -> str:
        if t == frames.mask_id:
            return MASK_GLYPH
        return html.escape(names[t] if names is not None and t < len(names) else str(t))

    head = "".join(f"<th>{'p' if i < frames.prompt_len else ''}{i}</th>" for i in range(length))
    tc_head = "<th>TC (nats)</th>" if total_correlation is not None else ""
    rows = [f"<tr><th>round</th>{head}<th>new</th>{tc_head}</tr>"]
    for r in range(upto + 1):
        cells, new = [], 0
        for i in range(length):
            t = int(frames.states[r, i])
            if i < frames.prompt_len:
                cells.append(f"<td style='color:#555'>{name(t)}</td>")
            elif r > 0 and int(frames.round_of[i]) == r:
                c = float(frames.confidence[i])
                new += 1
                cells.append(f"<td style='background:{_conf_colour(c)};font-weight:bold'>{name(t)}"
                             f"<br><small>{c:.2f}</small></td>")
            else:
                cells.append(f"<td>{name(t)}</td>")
        tc = ""
        if total_correlation is not None:
            tc = (f"<td>{float(total_correlation[r - 1]):.3f}</td>"
                  if 0 < r <= len(total_correlation) else "<td></td>")
        rows.append(f"<tr><th>{r}</th>{''.join(cells)}<td>{new}</td>{tc}</tr>")
    style = ("border-collapse:collapse;text-align:center;font-family:monospace;"
             "font-size:14px")
    cell = "table.dk-rounds td, table.dk-rounds th {border:1px solid #ccc;padding:2px 6px;}"
    # the table scrolls inside its column instead of sliding under what is beside it
    return (f"<style>{cell}</style><div style='overflow-x:auto;max-width:100%'>"
            f"<table class='dk-rounds' style='{style}'>" + "".join(rows) + "</table></div>")


def plot_unmasking(frames: Frames, names: Optional[Sequence[str]] = None, ax=None,
                   title: Optional[str] = None) -> Figure:
    """A rounds-by-positions grid: the cell of position ``i`` in row ``r`` is coloured by the
    confidence of its token once committed (grey for the prompt, white while masked) and
    labelled by the token; a black frame marks the round in which it was committed."""
    rounds, length = frames.rounds, frames.states.shape[1]
    if ax is None:
        fig = Figure(figsize=(0.55 * length + 1.6, 0.42 * (rounds + 1) + 1.0))
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    img = np.ones((rounds + 1, length, 3))
    import matplotlib as mpl
    cmap = mpl.colormaps["Greens"]
    for r in range(rounds + 1):
        for i in range(length):
            t = int(frames.states[r, i])
            if i < frames.prompt_len:
                img[r, i] = (0.85, 0.85, 0.85)
            elif t != frames.mask_id:
                img[r, i] = cmap(0.15 + 0.75 * float(np.nan_to_num(frames.confidence[i])))[:3]
            label = MASK_GLYPH if t == frames.mask_id else (
                names[t] if names is not None and t < len(names) else str(t))
            ax.text(i, r, label, ha="center", va="center", fontsize=9, family="monospace")
            if r > 0 and i >= frames.prompt_len and int(frames.round_of[i]) == r:
                ax.add_patch(mpl.patches.Rectangle((i - 0.5, r - 0.5), 1, 1, fill=False, lw=1.5))
    ax.imshow(img, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(length))
    ax.set_yticks(range(rounds + 1))
    ax.set_xlabel("position")
    ax.set_ylabel("after round")
    ax.set_title(title or f"{rounds} rounds (colour: confidence of the committed token)",
                 fontsize=10)
    return fig


# ---------------------------------------------------------------------- the Pareto picture
def _label(p: dict) -> str:
    knobs = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in p.get("knobs", {}).items())
    return f"{p['strategy']}" + (f" ({knobs})" if knobs else "")


def plot_pareto(points: Sequence[dict], current: Optional[dict] = None, ax=None,
                y: str = "tv", title: Optional[str] = None,
                bound: Optional[float] = None) -> Figure:
    """Exact error ``y`` (default total variation) against rounds, one colour per strategy,
    the Pareto front as a dashed line, ``current`` as a large black-edged star, and ``bound``
    (e.g. the bits-to-rounds lower bound on rounds) as a vertical dotted line.

    Strategies that land on the same point are drawn as concentric rings (each strategy a size
    smaller than the one before), and the legend, outside the axes so that it covers no point,
    says so. The y axis always shows ``[0, max]`` with a margin, also when every error is 0."""
    if ax is None:
        fig = Figure(figsize=(7.6, 4.2))
        fig.subplots_adjust(left=0.1, right=0.66, bottom=0.13, top=0.9)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    by_strategy: dict = {}
    for p in points:
        by_strategy.setdefault(p["strategy"], []).append(p)
    n = len(by_strategy)
    xy = [(round(p["rounds"], 9), round(p[y], 9)) for p in points]
    shared = len(set(xy)) < len(xy)
    for k, (name, pts) in enumerate(by_strategy.items()):  # one scatter per strategy (fast)
        ax.scatter([p["rounds"] for p in pts], [p[y] for p in pts], s=(3 + 2.2 * (n - k)) ** 2,
                   zorder=3, color=STRATEGY_COLORS.get(name, "k"), label=name,
                   edgecolor="white", lw=0.6, clip_on=False)
    front = pareto_front(points, y=y)
    if front:
        ax.step([p["rounds"] for p in front], [p[y] for p in front], where="post", ls="--",
                color="k", lw=1, alpha=0.6, label="Pareto front", zorder=2)
    if current is not None:
        ax.scatter([current["rounds"]], [current[y]], s=260, marker="*",
                   color=STRATEGY_COLORS.get(current["strategy"], "k"), edgecolor="k",
                   lw=1.2, zorder=4, clip_on=False,
                   label="this run: " + _label(current).replace(" (", "\n(", 1))
    if bound is not None and math.isfinite(bound):
        ax.axvline(bound, ls=":", color="#444", lw=1.2, label=f"bits-to-rounds bound {bound:.2f}")
    ax.set_xlabel("rounds (expected; lossless rules: model calls)")
    ax.set_ylabel({"tv": "exact TV to the true law"}.get(y, y))
    ys = [p[y] for p in points] + ([current[y]] if current is not None else [])
    top = max([v for v in ys if math.isfinite(v)] + [0.0])
    pad = max(0.1 * top, 0.03)
    ax.set_ylim(-pad, top + pad)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if shared:
        from matplotlib.lines import Line2D
        handles.append(Line2D([], [], ls="none", marker="o", mfc="none", mec="#555", ms=9))
        labels.append("rings: strategies at the same point")
    leg = ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                    borderaxespad=0.0, frameon=False)
    for h in getattr(leg, "legend_handles", []):  # one marker size in the key, whatever the ring
        if hasattr(h, "set_sizes"):
            h.set_sizes([36])
    if title:
        ax.set_title(title, fontsize=10)
    return fig
