"""Demo tab "dLLM decoding": a masked diffusion language model decodes a short sequence round by
round, and the decoding strategy's *exact* error and rounds sit on a Pareto plot beside the other
strategies.

The language is an oracle whose conditionals ``p(x_i | visible tokens)`` are exact: the course's
hidden-Markov language (:meth:`diffkit.discrete.HMMLanguage.default`, forward-backward) or a
ParallelBench-style list task (:mod:`diffkit.discrete.tasks`, the uniform law over its valid
answers). The decoder's whole output law is enumerated by
:func:`diffkit.discrete.exact.output_law`, so its total variation and KL to the true law are
numbers, not estimates. The model is the exact oracle (default) or the shipped tiny masked
transformer, evaluated against the same true law.

Every registered strategy is offered with its own knobs: which knobs a strategy reads, their
defaults and their bounds come from its record (:mod:`diffkit.discrete.strategies`); the tab only
narrows the bounds to what a slider can show.

Bounds (the enumeration grows like ``V ** length``): HMM generation length 2..``MAX_GEN``
(``MAX_GEN_SAMPLED`` at temperature > 0); the list tasks have a fixed answer length of 4
(``latin``, with 12, is left out); steps 1..``MAX_STEPS`` (at most the length); seed
0..``MAX_SEED``; the transformer on a list task at temperature 0 only. Combinations that do not
fit (steps that are not a multiple of the blocks, draft-verify at T > 0, ...) are adjusted and the
note says how. Inputs go through :mod:`apps.widgets` (clamped or refused in one message, a named
strict API, a bounded cache, the default view computed at start).
"""

from __future__ import annotations

import functools
import math
import time

import gradio as gr
import torch

from apps import widgets as w
from diffkit import discrete
from diffkit.discrete import exact
from diffkit.discrete import strategy_records as records
from diffkit.viz import decoding as dviz

TITLE = "dLLM decoding"
API_NAME = "dllm"
ROUND_API_NAME = "dllm_round"
MAX_GEN = 5  # HMM generation length bound (exact enumeration) ...
MAX_GEN_SAMPLED = 3  # ... and at temperature > 0, where every sampled token branches the tree
MAX_STEPS = 8
MAX_SEED = 9999
MAX_ROUNDS_SHOWN = 16
#: the 4x4 Latin square task (12 answer tokens) is left out: its decoding tree is too large to
#: enumerate at temperature 1 within a second (lesson 12 measures it by Monte Carlo)
LANGUAGES = ("hmm",) + tuple(t for t in discrete.TASKS if t != "latin")
MODELS = ("oracle", "transformer")
CHECKPOINT = {"hmm": "hmm-default"}  # every task uses the "tasks" checkpoint

#: how the tab shows each strategy option: (low, high, step, integer, help); defaults come from
#: the records. 0 stands for "the record's default" where the record's default is None.
KNOB_UI = {
    "threshold": (0.05, 1.0, 0.05, False, "commit every candidate at least this confident"),
    "factor": (0.25, 8.0, 0.25, False, "largest n with (n + 1)(1 - c_(n)) < factor"),
    "gap": (0.0, 20.0, 0.5, False, "top-2 log-probability gap for Prophet's early commit; "
                                   "0: its phase thresholds 7.5 / 5 / 2.5"),
    "draft": (1, 16, 1, True, "drafted tokens verified per call"),
    "gamma": (0.0, 3.0, 0.05, False, "entropy bound of a round (nats)"),
    "alpha": (0.0, 5.0, 0.1, False, "weight of log(1 + credit)"),
    "boost": (0.0, 2.0, 0.05, False, "credit gain p_top1 ** boost"),
    "decay": (0.0, 1.0, 0.05, False, "credit decay per round"),
    "low_threshold": (0.0, 1.0, 0.05, False, "a run's best position must exceed this"),
    "eta": (0.0, 1.0, 0.01, False, "ReMDM's remasking cap"),
    "wide": (0.05, 1.0, 0.05, False, "wide-in: commit above this"),
    "narrow": (0.0, 1.0, 0.05, False, "narrow-out: take back drafts below this (>= wide)"),
    "max_rounds": (0, 16, 1, True, "rounds per block before every mask is committed; 0: 2 x block"),
}
CHOICE_UI = {"reduce": ("min", "mean")}


def _knob_defaults() -> dict:
    out: dict = {}
    for name in records.available():
        for o in records.info(name).options:
            if o.name not in out:
                out[o.name] = o.default
    return out


KNOB_DEFAULTS = _knob_defaults()
KNOBS = tuple(KNOB_DEFAULTS)


def _knob_spec(name: str):
    if name in CHOICE_UI:
        return w.Choice(name, CHOICE_UI[name], KNOB_DEFAULTS[name], label=name)
    lo, hi, step, integer, text = KNOB_UI[name]
    default = KNOB_DEFAULTS[name]
    default = 0 if default is None else default
    return w.Numeric(name, lo, hi, default, integer=integer, step=step, label=name, info=text)


SPECS = [
    w.Choice("language", LANGUAGES, "hmm", label="language / task"),
    w.Choice("model", MODELS, "oracle", label="model",
             info="oracle: exact conditionals; transformer: the shipped tiny checkpoint"),
    w.Choice("strategy", records.available(), "confidence", label="strategy"),
    w.Numeric("gen_length", 2, MAX_GEN, 4, integer=True, label="generation length (HMM)",
              info=f"{MAX_GEN_SAMPLED} at most when sampling; list tasks: their answer length"),
    w.Numeric("steps", 1, MAX_STEPS, 2, integer=True, label="steps",
              info="rounds of the fixed-schedule strategies; at most the length"),
    w.Numeric("block_length", 0, MAX_STEPS, 0, integer=True, label="block length",
              info="0: one block; must divide the length"),
    w.Numeric("temperature", 0.0, 2.0, 0.0, step=0.25, label="temperature",
              info="0: greedy; otherwise sample the committed tokens"),
    w.Numeric("seed", 0, MAX_SEED, 0, integer=True, label="seed",
              info="sampling and the task's prompt"),
    w.Choice("schedule", ("even", "dream"), "even", label="schedule",
             info="round sizes of the fixed-schedule strategies: LLaDA's even split or Dream's timesteps"),
] + [_knob_spec(k) for k in KNOBS]
NAMES = tuple(s.name for s in SPECS)
DEFAULT = {s.name: s.default for s in SPECS}


# ---------------------------------------------------------------------- languages and models
@functools.cache
def oracle(language: str):
    """The exact oracle called ``language``: the HMM language or a list task."""
    if language == "hmm":
        return discrete.HMMLanguage.default()
    if language in discrete.TASKS:
        return discrete.get_task(language)
    raise ValueError(f"language must be one of {', '.join(LANGUAGES)}; got {language!r}")


class _Net:
    """A shipped network as a decode model: ``logits = model(tokens)`` without autograd."""

    def __init__(self, net):
        self.net, self.mask_id = net, net.mask_id

    @torch.no_grad()
    def __call__(self, tokens):
        return self.net(tokens)


@functools.cache
def _network(checkpoint: str):
    from diffkit.discrete import checkpoints
    return _Net(checkpoints.load_pretrained(checkpoint))


def transformer_available(language: str) -> bool:
    """Whether the shipped checkpoint for ``language`` can be loaded."""
    try:
        _network(CHECKPOINT.get(language, "tasks"))
        return True
    except Exception:  # noqa: BLE001 - a missing or unreadable checkpoint: offer the oracle only
        return False


@functools.cache
def _oracle_model(language: str) -> discrete.MemoModel:
    # exact enumerations of every strategy visit the same states: compute each one once
    return discrete.MemoModel(oracle(language).as_model())


def model_for(language: str, model: str):
    """The decode model: the oracle (its answers remembered) or the shipped network."""
    if model == "oracle" or not transformer_available(language):
        return _oracle_model(language)
    return _network(CHECKPOINT.get(language, "tasks"))


# ---------------------------------------------------------------------- inputs that fit together
def fit(language, model, strategy, gen_length, steps, block_length, temperature, seed, knobs):
    """Adjust a validated combination so that it can be decoded and enumerated: returns
    ``(model, prompt tuple, gen_length, steps, block_length or None, T, knobs, note)``."""
    lang = oracle(language)
    rec = records.info(strategy)
    notes = []
    if model == "transformer" and not transformer_available(language):
        notes.append("The shipped transformer is not available: the oracle decodes.")
        model = "oracle"
    if rec.lossless is not None and temperature != 0:
        notes.append(f"{strategy} is lossless at temperature 0 only: ran temperature 0.")
        temperature = 0.0
    if model == "transformer" and language != "hmm" and temperature != 0:
        notes.append("The transformer on a list task gives all 14 tokens some probability, so the "
                     "exact tree at T > 0 is too large: ran temperature 0.")
        temperature = 0.0
    if language == "hmm":
        if temperature > 0 and gen_length > MAX_GEN_SAMPLED:
            notes.append(f"Sampling branches the exact enumeration on every token: length "
                         f"{gen_length} -> {MAX_GEN_SAMPLED}.")
            gen_length = MAX_GEN_SAMPLED
        prompt: tuple = ()
    else:
        if gen_length != lang.answer_length:
            notes.append(f"The {language} task's answer has {lang.answer_length} tokens.")
        gen_length = lang.answer_length
        prompt = tuple(lang.sample_prompts(1, torch.Generator().manual_seed(seed))[0].tolist())
    if steps > gen_length:
        notes.append(f"steps {steps} > length {gen_length}: ran {gen_length}.")
        steps = gen_length
    block = int(block_length)
    if block and gen_length % block:
        notes.append(f"block length {block} does not divide {gen_length}: one block.")
        block = 0
    block_length = None if block in (0, gen_length) else block
    blocks = 1 if block_length is None else gen_length // block_length
    if rec.fixed_schedule and steps % blocks:
        steps = max(blocks, steps // blocks * blocks)
        notes.append(f"steps must be a multiple of the {blocks} blocks: ran {steps}.")
    opts = {o.name: knobs[o.name] for o in rec.options}
    if "gap" in opts and opts["gap"] == 0:
        opts["gap"] = None
    if "max_rounds" in opts and opts["max_rounds"] == 0:
        opts["max_rounds"] = None
    if strategy == "hierarchy" and opts["low_threshold"] > opts["threshold"]:
        opts["low_threshold"] = opts["threshold"]
        notes.append("low_threshold must not exceed threshold: ran them equal.")
    if strategy == "wino" and opts["narrow"] < opts["wide"]:
        opts["narrow"] = opts["wide"]
        notes.append("narrow must be at least wide: ran them equal.")
    if rec.fixed_schedule:
        opts["steps"] = steps
    return model, prompt, gen_length, steps, block_length, float(temperature), opts, " ".join(notes)


# ---------------------------------------------------------------------- exact points, cached
@functools.lru_cache(maxsize=4096)
def exact_point(language: str, model: str, prompt: tuple, gen_length: int, block_length,
                temperature: float, schedule: str, strategy: str, knobs: tuple) -> dict:
    """One strategy's exact error and rounds (:func:`diffkit.discrete.exact.pareto_points`)."""
    kw = dict(knobs)
    if records.info(strategy).fixed_schedule:
        kw["schedule"] = schedule
    return exact.pareto_points(oracle(language), torch.tensor(prompt, dtype=torch.long), gen_length,
                               [(strategy, kw)], block_length=block_length,
                               temperature=temperature, model=model_for(language, model))[0]


def reference_points(language: str, model: str, prompt: tuple, gen_length: int, block_length,
                     temperature: float, schedule: str, strategy: str = "confidence") -> list[dict]:
    """The settings of :func:`diffkit.discrete.exact.strategy_grid` here (cached); the remasking
    rules, whose exact chains are the costly ones, only when one of them is the strategy shown."""
    grid = [(s, k) for s, k in exact.strategy_grid(gen_length, block_length, temperature)
            if not records.info(s).remasks or s == strategy]
    return [exact_point(language, model, prompt, gen_length, block_length, temperature, schedule,
                        s, tuple(sorted(k.items()))) for s, k in grid]


def _finite(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "+inf" if v > 0 else "nan"
    return v


# ---------------------------------------------------------------------- the endpoint
def compute(language, model, strategy, gen_length, steps, block_length, temperature, seed,
            schedule, *knob_values):
    """The tab's computation: ``(rounds table HTML, rounds shown, Pareto figure, values, note,
    record)``. ``values`` holds the decode (tokens, rounds, per-round committed positions and
    confidences) and the strategy's exact figures (TV, both KLs, expected rounds, total
    correlation per round, bits-to-rounds bound)."""
    start = time.perf_counter()
    knobs = dict(zip(KNOBS, knob_values))
    model, prompt, gen_length, steps, block_length, temperature, opts, note = fit(
        language, model, strategy, gen_length, steps, block_length, temperature, seed, knobs)
    lang = oracle(language)
    rec = records.info(strategy)
    decoder = model_for(language, model)
    mask_id = decoder.mask_id
    p = torch.tensor(prompt, dtype=torch.long)
    kw = dict(opts)
    if rec.fixed_schedule:
        kw["schedule"] = schedule
    out = discrete.decode(decoder, p, gen_length, mask_id, strategy=strategy,
                          block_length=block_length, temperature=temperature,
                          generator=torch.Generator().manual_seed(seed), **kw)
    frames = dviz.unmasking_frames(out, len(prompt), mask_id)
    point = exact_point(language, model, prompt, gen_length, block_length, temperature, schedule,
                        strategy, tuple(sorted(opts.items())))
    comps, probs = exact.true_law(lang, p, gen_length)
    tcs = []
    if rec.lossless is None:  # a lossless rule's tokens are verified one by one: no TC applies
        for r, rnd in enumerate(out.history, start=1):
            vis = frames.states[r - 1, len(prompt):].clone()
            vis[vis == mask_id] = -1
            pos = (rnd.committed[0, len(prompt):]).nonzero().flatten().tolist()
            tcs.append(exact.total_correlation(comps, probs, vis, pos))
    refs = reference_points(language, model, prompt, gen_length, block_length, temperature, schedule,
                            strategy)
    bound = (point["information_bits"] / point["max_round_bits"]
             if point["max_round_bits"] > 0 else math.nan)
    names = dviz.token_names(lang)
    fig = dviz.plot_pareto(refs, current=point, bound=bound,
                           title=f"{language}, {gen_length} tokens, T = {temperature:g}: exact "
                                 "error against rounds")
    tokens = out.tokens[0].tolist()
    values = {
        "language": language, "model": model, "strategy": strategy, "knobs": opts,
        "gen_length": gen_length, "block_length": block_length or gen_length,
        "temperature": temperature, "seed": seed, "schedule": schedule, "prompt": list(prompt),
        "tokens": tokens, "text": " ".join(names[t] for t in tokens),
        "rounds": out.rounds, "nfe": out.nfe,
        "committed": [r.committed[0].nonzero().flatten().tolist() for r in out.history],
        "confidence": [round(float(c), 6) if not math.isnan(c) else None
                       for c in frames.confidence.tolist()],
        "round_tc_nats": [round(t, 6) for t in tcs] if tcs else None,
        "exact": {k: _finite(v) for k, v in point.items()},
        "bits_to_rounds_bound": round(bound, 6) if math.isfinite(bound) else None,
        "reference_points": len(refs),
    }
    if hasattr(lang, "score"):
        values["correct"] = bool(lang.score(p.unsqueeze(0), out.tokens)[0] == 1.0)
    kl = point["kl_model_true"]
    text = (f"**{strategy}** decoded {gen_length} tokens in **{out.rounds} rounds** "
            f"({out.nfe} model calls). Exact law of this decoder: TV to the true law "
            f"**{point['tv']:.4f}**, ")
    text += (f"KL(decoder || true) = {kl:.4f} nats, " if math.isfinite(kl) else
             "KL(decoder || true) = inf (it can output sequences the language never makes), ")
    text += f"expected rounds {point['rounds']:.3f}."
    note = (note + " " + text).strip()
    values["seconds"] = round(time.perf_counter() - start, 3)
    record = {"frames": frames.states.tolist(), "round_of": frames.round_of.tolist(),
              "confidence": values["confidence"], "prompt_len": len(prompt), "mask_id": mask_id,
              "names": names, "tc": values["round_tc_nats"]}
    html_table = dviz.rounds_html(frames, names, total_correlation=tcs or None)
    return html_table, min(out.rounds, MAX_ROUNDS_SHOWN), fig, values, note, record


ENDPOINT = w.Endpoint(compute, SPECS, api_name=API_NAME, cache_size=256)


def show_round(upto: int, record: dict) -> str:
    """The rounds table of the last run (``record``) cut after round ``upto`` (validated)."""
    if not record:
        return ""
    frames = dviz.Frames(torch.tensor(record["frames"]), torch.tensor(record["round_of"]),
                         torch.tensor([math.nan if c is None else c for c in record["confidence"]],
                                      dtype=torch.float64),
                         record["prompt_len"], record["mask_id"])
    return dviz.rounds_html(frames, record["names"], upto=upto, total_correlation=record["tc"])


#: the rounds table's cut: a view control (it re-draws the last run's table, runs nothing); a
#: typed value is clamped or refused with one message like every input of the tab
ROUND_VIEW = w.View(show_round, w.Numeric("upto", 0, MAX_ROUNDS_SHOWN, 0, integer=True,
                                          label="show rounds up to"), api_name=ROUND_API_NAME)
VIEW_CONTROLS = (ROUND_VIEW,)


def reveal(name: str) -> dict:
    """Input values under which the strategy option ``name`` shows (the first strategy, in
    registry order, that reads it): how a user, or the browser test, reaches a hidden knob."""
    for strategy in records.available():
        if name in {o.name for o in records.info(strategy).options}:
            return {"strategy": strategy}
    raise ValueError(f"no strategy reads {name!r}")


def visible_knobs(strategy: str) -> list:
    """Which inputs ``strategy`` reads (from its record): steps and schedule for the
    fixed-schedule rules, and its own options."""
    try:
        rec = records.info(strategy)
    except ValueError:
        return [gr.skip()] * (len(KNOBS) + 2)
    own = {o.name for o in rec.options}
    return ([gr.update(visible=rec.fixed_schedule)] * 2
            + [gr.update(visible=k in own) for k in KNOBS])


EXPLAIN = """
**Reading the plot.** Each dot is the *exact* law of one decoder: its total variation to the
language's true law (how far what it outputs is from what the language says) against its expected
number of rounds. The dashed line is the Pareto front: no strategy is both faster and more exact.

* **Why every strategy sits at the same TV at temperature 0 on the HMM language** (about 0.91 for
  4 tokens): greedy decoding is deterministic, so its law is a point mass on one sequence and its
  TV is `1 - p(that sequence)`; every strategy finds the same most probable tokens here, so they
  share the point. Temperature 1 is where strategies differ.
* **Rings** are strategies that land on the same point (the legend, beside the axes, lists them).
* **The dotted line** is the bits-to-rounds bound of this run: the information its rounds reveal
  divided by the most any one round revealed. A decoder that reveals at most that much per round
  needs at least that many rounds; a point *left of the line* used fewer rounds because some of
  its rounds revealed more, which is exactly where its error comes from (it committed correlated
  tokens together and drew them from the product of their marginals).
"""


def build() -> None:
    """Lay out the tab inside the current ``gr.Blocks``/``gr.Tab`` context and wire its events."""
    first = ENDPOINT.default_view()
    gr.Markdown(
        "A masked diffusion LM starts from an all-mask sequence and **commits tokens over "
        "rounds**; the *strategy* picks which masked positions to commit each round (some may "
        "take a token back). The language is an **exact oracle** (a hidden Markov language, or a "
        "list task whose answers are enumerated), so the law of everything the decoder can output "
        "is computed exactly: its **total variation to the true law** is a number, not an "
        "estimate. The star is this setting; the dots are the other strategies at the same "
        "length and temperature.")
    by_name = {s.name: s for s in SPECS}
    comps = {}
    with gr.Row():
        comps["language"] = by_name["language"].dropdown(elem_id="dllm-language")
        models = list(MODELS) if transformer_available("hmm") else ["oracle"]
        comps["model"] = by_name["model"].dropdown(choices=models)
        comps["strategy"] = by_name["strategy"].dropdown(elem_id="dllm-strategy")
        comps["temperature"] = by_name["temperature"].slider(elem_id="dllm-temperature")
    with gr.Row():
        comps["gen_length"] = by_name["gen_length"].slider(elem_id="dllm-gen")
        comps["steps"] = by_name["steps"].slider(elem_id="dllm-steps")
        comps["block_length"] = by_name["block_length"].slider(elem_id="dllm-block")
        comps["seed"] = by_name["seed"].number(elem_id="dllm-seed")
        comps["schedule"] = by_name["schedule"].dropdown(elem_id="dllm-schedule")
    own = {o.name for o in records.info(DEFAULT["strategy"]).options}
    with gr.Row():
        for k in KNOBS:
            spec = by_name[k]
            kw = dict(visible=k in own, elem_id=f"dllm-{k.replace('_', '-')}")
            comps[k] = spec.dropdown(**kw) if isinstance(spec, w.Choice) else spec.slider(**kw)
    note = gr.Markdown(first[4], label="note", elem_id="dllm-note")
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            round_in = ROUND_VIEW.spec.slider(value=first[1], elem_id="dllm-round")
            table = gr.HTML(first[0], label="rounds table", elem_id="dllm-rounds")
        with gr.Column(scale=1, min_width=420):
            pareto = gr.Plot(first[2], label="exact error against rounds", show_label=False,
                             format="png", elem_id="dllm-pareto")
    values = gr.JSON(first[3], label="exact values", max_height=360, elem_id="dllm-values")
    with gr.Accordion("How to read this", open=False):
        gr.Markdown(EXPLAIN)
    record = gr.State(first[5])
    run = ENDPOINT.wire(comps, [table, round_in, pareto, values, note, record])
    comps["strategy"].change(visible_knobs, inputs=comps["strategy"],
                             outputs=[comps["steps"], comps["schedule"]] + [comps[k] for k in KNOBS],
                             api_visibility="private")
    ROUND_VIEW.wire(round_in, [record], [table])
    ROUND_VIEW.follow(run)
