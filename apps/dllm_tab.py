"""Demo tab "dLLM decoding": a masked diffusion language model decodes a short sequence round by
round, and the decoding strategy's *exact* error and rounds sit on a Pareto plot beside the other
strategies.

The language is an oracle whose conditionals ``p(x_i | visible tokens)`` are exact: the course's
hidden-Markov language (:meth:`diffkit.discrete.HMMLanguage.default`, forward-backward) or a
ParallelBench-style list task (:mod:`diffkit.discrete.tasks`, the uniform law over its valid
answers). The decoder's whole output law is enumerated by
:func:`diffkit.discrete.exact.output_law`, so its total variation and KL to the true law are
numbers, not estimates. The model is the exact oracle (default) or the shipped tiny masked
transformer (:func:`diffkit.discrete.checkpoints.load_pretrained`), evaluated against the same
true law.

Bounds (the enumeration grows like ``V ** length``): HMM generation length 2..``MAX_GEN``
(``MAX_GEN_SAMPLED`` at temperature 1); the list tasks have a fixed answer length of 4
(``latin``, with 12, is left out); steps 1..``MAX_STEPS`` (at most the length); seed
0..``MAX_SEED``; the transformer on a list task at temperature 0 only (its softmax puts mass on
all 14 tokens, so the tree at T > 0 is too large). The other strategies' points are computed once
per setting and cached (``functools.lru_cache``), so only the first request of a setting pays
for them (about a second for the default on an idle 2-core CPU). No background thread: a
process that imports the hub and exits must not be left with torch work in flight.
"""

from __future__ import annotations

import functools
import math
import time

import gradio as gr
import torch

from diffkit import discrete
from diffkit.viz import decoding as dviz

TITLE = "dLLM decoding"
API_NAME = "dllm"
ROUND_API_NAME = "dllm_round"
MAX_GEN = 5  # HMM generation length bound (exact enumeration) ...
MAX_GEN_SAMPLED = 4  # ... and at temperature > 0, where every sampled token branches the tree
MAX_STEPS = 8
MAX_SEED = 9999
#: the 4x4 Latin square task (12 answer tokens) is left out: its decoding tree is too large to
#: enumerate at temperature 1 within a second (lesson 12 measures it by Monte Carlo)
LANGUAGES = ("hmm",) + tuple(t for t in discrete.TASKS if t != "latin")
MODELS = ("oracle", "transformer")
TEMPERATURES = (0.0, 1.0)
CHECKPOINT = {"hmm": "hmm-default"}  # every task uses the "tasks" checkpoint
DEFAULT = {"language": "hmm", "model": "oracle", "strategy": "confidence", "gen_length": 4,
           "steps": 2, "block_length": 0, "threshold": 0.7, "factor": 1.0, "temperature": 1.0,
           "seed": 0}


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
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}; got {model!r}")
    if model == "oracle":
        return _oracle_model(language)
    if not transformer_available(language):
        raise ValueError("the shipped transformer checkpoint is not available: use the oracle")
    return _network(CHECKPOINT.get(language, "tasks"))


# ---------------------------------------------------------------------- inputs
def settings(language: str, gen_length, steps, block_length, temperature, seed):
    """Checked inputs: ``(oracle, prompt tuple, gen_length, steps, block_length or None, T,
    seed, note)``; raises ``ValueError`` naming the bound that was broken."""
    lang = oracle(language)
    try:
        gen_length, steps, block = int(gen_length), int(steps), int(block_length or 0)
        seed, temperature = int(seed), float(temperature)
    except (TypeError, ValueError):
        raise ValueError("gen_length, steps, block_length and seed must be integers") from None
    if temperature not in TEMPERATURES:
        raise ValueError(f"temperature must be one of {TEMPERATURES}; got {temperature}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must lie in [0, {MAX_SEED}]; got {seed}")
    note = ""
    if language == "hmm":
        if not 2 <= gen_length <= MAX_GEN:
            raise ValueError(f"gen_length must lie in [2, {MAX_GEN}] (exact enumeration); got {gen_length}")
        if temperature > 0 and gen_length > MAX_GEN_SAMPLED:
            note += (f"Sampling (T > 0) branches the exact enumeration on every token: length "
                     f"clamped to {MAX_GEN_SAMPLED}. ")
            gen_length = MAX_GEN_SAMPLED
        prompt: tuple = ()
    else:
        if gen_length != lang.answer_length:
            note += f"The {language} task's answer has {lang.answer_length} tokens: gen_length set to it. "
        gen_length = lang.answer_length
        prompt = tuple(lang.sample_prompts(1, torch.Generator().manual_seed(seed))[0].tolist())
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must lie in [1, {MAX_STEPS}]; got {steps}")
    if steps > gen_length:
        note += f"steps = {steps} > length {gen_length}: clamped to {gen_length}. "
        steps = gen_length
    if block and (block < 1 or gen_length % block):
        raise ValueError(f"block_length must divide the generation length {gen_length} "
                         f"(or be 0: one block); got {block}")
    block_length = None if block in (0, gen_length) else block
    blocks = 1 if block_length is None else gen_length // block_length
    if steps % blocks:
        raise ValueError(f"steps = {steps} must be a multiple of the number of blocks ({blocks})")
    return lang, prompt, gen_length, steps, block_length, temperature, seed, note


def knobs_for(strategy: str, steps: int, threshold, factor) -> dict:
    """The knobs that ``strategy`` reads (steps, threshold or factor)."""
    if strategy not in discrete.STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(discrete.STRATEGIES)}; got {strategy!r}")
    if strategy in ("random", "confidence", "margin", "entropy", "prophet"):
        return {"steps": int(steps)}
    if strategy == "threshold":
        th = float(threshold)
        if not 0 < th <= 1:
            raise ValueError(f"threshold must lie in (0, 1]; got {th}")
        return {"threshold": round(th, 4)}
    if strategy == "factor":
        f = float(factor)
        if not 0 < f <= 8:
            raise ValueError(f"factor must lie in (0, 8]; got {f}")
        return {"factor": round(f, 4)}
    return {}


# ---------------------------------------------------------------------- exact points, cached
@functools.lru_cache(maxsize=4096)
def exact_point(language: str, model: str, prompt: tuple, gen_length: int, block_length,
                temperature: float, strategy: str, knobs: tuple) -> dict:
    """One strategy's exact error and rounds (see :func:`diffkit.viz.decoding.pareto_points`)."""
    return dviz.pareto_points(oracle(language), torch.tensor(prompt, dtype=torch.long), gen_length,
                              [(strategy, dict(knobs))], block_length=block_length,
                              temperature=temperature, model=model_for(language, model))[0]


def reference_points(language: str, model: str, prompt: tuple, gen_length: int, block_length,
                     temperature: float) -> list[dict]:
    """Every strategy of :func:`diffkit.viz.decoding.strategy_grid` at this setting (cached)."""
    grid = dviz.strategy_grid(gen_length, block_length, temperature)
    return [exact_point(language, model, prompt, gen_length, block_length, temperature, s,
                        tuple(sorted(k.items()))) for s, k in grid]


# ---------------------------------------------------------------------- the endpoint
def compute(language, model, strategy, gen_length, steps, block_length, threshold, factor,
            temperature, seed):
    """The tab's endpoint: ``(rounds table HTML, round slider, Pareto figure, values, note,
    record)``. ``values`` holds the decode (tokens, rounds, per-round committed positions and
    confidences) and the strategy's exact figures (TV, both KLs, expected rounds, total
    correlation per round, bits-to-rounds bound)."""
    start = time.perf_counter()
    lang, prompt, gen_length, steps, block_length, temperature, seed, note = settings(
        language, gen_length, steps, block_length, temperature, seed)
    knobs = knobs_for(strategy, steps, threshold, factor)
    if strategy == "draft-verify" and temperature != 0:
        raise ValueError("draft-verify is lossless at temperature 0 only: choose temperature 0")
    if model == "transformer" and language != "hmm" and temperature != 0:
        raise ValueError("the transformer on a list task: temperature 0 only (its softmax gives "
                         "all 14 tokens some probability, so the exact tree at T > 0 is too large)")
    decoder = model_for(language, model)
    mask_id = decoder.mask_id
    gen = torch.Generator().manual_seed(seed)
    p = torch.tensor(prompt, dtype=torch.long)
    out = discrete.decode(decoder, p, gen_length, mask_id, strategy=strategy,
                          block_length=block_length, temperature=temperature, generator=gen,
                          **knobs)
    frames = dviz.unmasking_frames(out, len(prompt), mask_id)
    law_point = exact_point(language, model, prompt, gen_length, block_length, temperature,
                            strategy, tuple(sorted(knobs.items())))
    # total correlation (exact, under the true law) of each round's committed set in this decode
    comps, probs = discrete.exact.true_law(lang, p, gen_length)
    tcs = []
    for r, rnd in enumerate(out.history if strategy != "draft-verify" else [], start=1):
        vis = frames.states[r - 1, len(prompt):].clone()
        vis[vis == mask_id] = -1
        pos = (rnd.committed[0, len(prompt):]).nonzero().flatten().tolist()
        tcs.append(discrete.exact.total_correlation(comps, probs, vis, pos))
    refs = reference_points(language, model, prompt, gen_length, block_length, temperature)
    bound = (law_point["information_bits"] / law_point["max_round_bits"]
             if law_point["max_round_bits"] > 0 else math.nan)
    names = dviz.token_names(lang)
    fig = dviz.plot_pareto(refs, current=law_point, bound=bound,
                           title=f"{language}, {gen_length} tokens, T = {temperature:g}: exact "
                                 "error against rounds")
    tokens = out.tokens[0].tolist()
    values = {
        "language": language, "model": model, "strategy": strategy, "knobs": knobs,
        "gen_length": gen_length, "block_length": block_length or gen_length,
        "temperature": temperature, "seed": seed, "prompt": list(prompt),
        "tokens": tokens, "text": " ".join(names[t] for t in tokens),
        "rounds": out.rounds, "nfe": out.nfe,
        "committed": [r.committed[0].nonzero().flatten().tolist() for r in out.history],
        "confidence": [round(float(c), 6) if not math.isnan(c) else None
                       for c in frames.confidence.tolist()],
        # draft-verify's tokens are verified one by one, not drawn together: no TC applies
        "round_tc_nats": [round(t, 6) for t in tcs] if tcs else None,
        "exact": {k: (v if not isinstance(v, float) or math.isfinite(v) else
                      ("+inf" if v > 0 else "nan")) for k, v in law_point.items()},
        "bits_to_rounds_bound": round(bound, 6) if math.isfinite(bound) else None,
        "reference_points": len(refs),
    }
    if hasattr(lang, "score"):
        values["correct"] = bool(lang.score(p.unsqueeze(0), out.tokens)[0] == 1.0)
    kl = law_point["kl_model_true"]
    note += (f"**{strategy}** decoded {gen_length} tokens in **{out.rounds} rounds** "
             f"({out.nfe} model calls). Exact law of this decoder: TV to the true law "
             f"**{law_point['tv']:.4f}**, KL(decoder || true) = "
             f"{kl:.4f} nats, expected rounds {law_point['rounds']:.3f}. " if math.isfinite(kl)
             else f"**{strategy}** decoded {gen_length} tokens in **{out.rounds} rounds**. "
                  f"Exact TV to the true law **{law_point['tv']:.4f}**; KL(decoder || true) = inf "
                  "(it can output sequences the language never makes). ")
    values["seconds"] = round(time.perf_counter() - start, 3)
    record = {"frames": frames.states.tolist(), "round_of": frames.round_of.tolist(),
              "confidence": values["confidence"], "prompt_len": len(prompt), "mask_id": mask_id,
              "names": names, "tc": values["round_tc_nats"]}
    html_table = dviz.rounds_html(frames, names, total_correlation=tcs or None)
    slider = gr.Slider(minimum=0, maximum=out.rounds, value=out.rounds, step=1)
    return html_table, slider, fig, values, note, record


def show_round(record: dict, upto) -> str:
    """The rounds table cut after round ``upto`` (the round slider's endpoint)."""
    if not record:
        return ""
    frames = dviz.Frames(torch.tensor(record["frames"]), torch.tensor(record["round_of"]),
                         torch.tensor([math.nan if c is None else c for c in record["confidence"]],
                                      dtype=torch.float64),
                         record["prompt_len"], record["mask_id"])
    return dviz.rounds_html(frames, record["names"], upto=int(upto or 0),
                            total_correlation=record["tc"])


def _endpoint(*args):
    try:
        return compute(*args)
    except ValueError as err:  # bad input: shown to the user, an error for API callers
        raise gr.Error(str(err)) from None


def build() -> None:
    """Lay out the tab inside the current ``gr.Blocks``/``gr.Tab`` context and wire its events."""
    gr.Markdown(
        "A masked diffusion LM starts from an all-mask sequence and **commits tokens over "
        "rounds**; the *strategy* picks which masked positions to commit each round. The "
        "language is an **exact oracle** (a hidden Markov language, or a list task whose answers "
        "are enumerated), so the law of everything the decoder can output is computed exactly: "
        "its **total variation to the true law** is a number, not an estimate. The star is this "
        "setting; the dots are the other strategies at the same length and temperature.")
    models = list(MODELS) if transformer_available("hmm") else ["oracle"]
    with gr.Row():
        lang_in = gr.Dropdown(list(LANGUAGES), value=DEFAULT["language"],
                              label="language / task", elem_id="dllm-language")
        model_in = gr.Dropdown(models, value=DEFAULT["model"], label="model",
                               info="oracle: exact conditionals; transformer: the shipped "
                                    "tiny checkpoint (on list tasks: temperature 0 only)")
        strat_in = gr.Dropdown(list(discrete.STRATEGIES), value=DEFAULT["strategy"],
                               label="strategy", elem_id="dllm-strategy")
        temp_in = gr.Radio(list(TEMPERATURES), value=DEFAULT["temperature"],
                           label="temperature", info="0: greedy; 1: sample the committed tokens")
    with gr.Row():
        gen_in = gr.Slider(2, MAX_GEN, value=DEFAULT["gen_length"], step=1,
                           label="generation length (HMM)",
                           info=f"bounded to [2, {MAX_GEN}] ({MAX_GEN_SAMPLED} when sampling) for exact "
                                "enumeration; list tasks "
                                "have a fixed answer length (4)", elem_id="dllm-gen")
        steps_in = gr.Slider(1, MAX_STEPS, value=DEFAULT["steps"], step=1, label="steps",
                             info=f"rounds for fixed-schedule strategies; bounded to [1, "
                                  f"{MAX_STEPS}] and to the length", elem_id="dllm-steps")
        block_in = gr.Slider(0, MAX_STEPS, value=DEFAULT["block_length"], step=1,
                             label="block length", info="0: one block; must divide the length",
                             elem_id="dllm-block")
    with gr.Row():
        thr_in = gr.Slider(0.05, 1.0, value=DEFAULT["threshold"], step=0.05,
                           label="threshold (strategy 'threshold')")
        fac_in = gr.Slider(0.25, 4.0, value=DEFAULT["factor"], step=0.25,
                           label="factor (strategy 'factor')")
        seed_in = gr.Number(DEFAULT["seed"], precision=0, minimum=0, maximum=MAX_SEED,
                            label=f"seed (0..{MAX_SEED}): sampling and the task's prompt")
        run_btn = gr.Button("Decode", variant="primary", elem_id="dllm-run")
    note = gr.Markdown(elem_id="dllm-note")
    with gr.Row():
        with gr.Column(scale=1):
            round_in = gr.Slider(0, 1, value=0, step=1, label="show rounds up to",
                                 elem_id="dllm-round")
            table = gr.HTML(elem_id="dllm-rounds")
        with gr.Column(scale=1):
            pareto = gr.Plot(label="exact error against rounds", show_label=False,
                             format="png", elem_id="dllm-pareto")
    values = gr.JSON(label="exact values", max_height=360, elem_id="dllm-values")
    record = gr.State({})
    inputs = [lang_in, model_in, strat_in, gen_in, steps_in, block_in, thr_in, fac_in, temp_in,
              seed_in]
    gr.on(triggers=[run_btn.click], fn=_endpoint, inputs=inputs,
          outputs=[table, round_in, pareto, values, note, record], api_name=API_NAME,
          trigger_mode="always_last")
    round_in.change(show_round, inputs=[record, round_in], outputs=[table],
                    api_name=ROUND_API_NAME, trigger_mode="always_last")
