"""Evaluating decoders against an oracle: Monte-Carlo estimates for long generations, the grid
of knob settings behind a Pareto plot (read from the strategy records), each setting's exact
error and rounds, and the non-dominated front.

The numbers of lessons 12 and 13, the dLLM benchmark and the demo tab's Pareto plot come from
here; :mod:`diffkit.viz.decoding` only draws them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor

from .. import _checks
from .decode import _int, decode
from .laws import LN2, kl_divergence, total_variation, true_law
from .strategies import available as _available
from .strategies import info as _info
from .walk import output_law

__all__ = ["monte_carlo", "MonteCarlo", "strategy_grid", "pareto_points", "pareto_front"]


@dataclass
class MonteCarlo:
    """Monte-Carlo estimates from ``n`` decodes: mean rounds per sequence (rounds in which it
    committed a token), the true NLL (bits) of the decoded
    completions ``E_q[-log2 p(x)]`` with its standard error, the same for exact
    one-token-per-round samples (an estimate of the true entropy ``H(p)``; their difference is
    ``KL(q || p) + H(q) - H(p)``), and the task score when the oracle is a task."""

    rounds: float
    nll_bits: float
    nll_bits_se: float
    reference_nll_bits: float
    reference_nll_bits_se: float
    score: Optional[float] = None


def _nll_bits(oracle, full: Tensor, plen: int) -> Tensor:
    """``-log2 p(completion | prompt)`` per row (``inf`` for an invalid task answer)."""
    lp = oracle.log_prob(full)
    if not hasattr(oracle, "prompt_length") and plen > 0:  # a language: divide out p(prompt)
        lp = lp - oracle.log_prob(full[:, :plen])
    return -lp / LN2


def monte_carlo(oracle, prompt, gen_length: int, n: int = 256, strategy: str = "confidence",
                generator: Optional[torch.Generator] = None, mask_id: Optional[int] = None,
                **decode_kwargs) -> MonteCarlo:
    """Estimates for generations too long to enumerate: decode ``n`` copies of ``prompt`` (1-D)
    with the oracle as the model, and as a reference draw ``n`` exact samples by one-token-per-round
    ``random``-order decoding at temperature 1 (whose law is the true law)."""
    mask_id = oracle.vocab_size if mask_id is None else _int(mask_id, "mask_id")
    n = _int(n, "n", 1, 1 << 20)
    prompts = torch.as_tensor(prompt, dtype=torch.long).reshape(1, -1).expand(n, -1)
    out = decode(oracle.as_model(mask_id), prompts, gen_length, mask_id, strategy=strategy,
                 generator=generator, **decode_kwargs)
    ref = decode(oracle.as_model(mask_id), prompts, gen_length, mask_id, steps=gen_length,
                 strategy="random", temperature=1.0, generator=generator)
    plen = prompts.shape[1]
    a, b = _nll_bits(oracle, out.tokens, plen), _nll_bits(oracle, ref.tokens, plen)
    se = lambda t: float(t.std() / math.sqrt(max(t.numel(), 1))) if t.numel() > 1 else math.nan  # noqa: E731
    score = None
    if hasattr(oracle, "score"):
        score = float(oracle.score(prompts, out.tokens).mean())
    if out.history:
        rounds = float(torch.stack([r.committed.any(-1) for r in out.history]).sum(0).double().mean())
    else:
        rounds = float(out.nfe)
    return MonteCarlo(rounds, float(a.mean()), se(a), float(b.mean()), se(b), score)


def strategy_grid(gen_length: int, block_length: Optional[int] = None,
                  temperature: float = 0.0,
                  strategies: Optional[Sequence[str]] = None) -> list[tuple[str, dict]]:
    """The knob settings behind a Pareto plot, read from the strategy records: every
    fixed-schedule strategy at every ``steps`` that divides ``gen_length`` and is a multiple of
    the number of blocks; every other strategy at the settings of its record's ``grid``
    (``threshold`` at 0.5 / 0.7 / 0.9, ``factor`` at 0.5 / 1 / 2, ...); rules that are lossless
    only at temperature 0 (``draft-verify``) only there."""
    gen_length = _int(gen_length, "gen_length", 1, 64)
    block_length = gen_length if block_length is None else _int(block_length, "block_length", 1, gen_length)
    temperature = _checks.real("temperature", temperature, 0.0)
    if gen_length % block_length:
        raise ValueError(f"gen_length={gen_length} must be divisible by block_length={block_length}")
    blocks = gen_length // block_length
    steps = [s for s in range(1, gen_length + 1) if gen_length % s == 0 and s % blocks == 0]
    out: list[tuple[str, dict]] = []
    for name in strategies or _available():
        rec = _info(name)
        if rec.lossless is not None and temperature != 0:
            continue
        if rec.fixed_schedule:
            grid = rec.grid or ({},)
            out += [(name, {"steps": s, **g}) for g in grid for s in steps]
        else:
            out += [(name, dict(g)) for g in (rec.grid or ({},))]
    return out


def pareto_points(oracle, prompt, gen_length: int, settings: Sequence[tuple[str, dict]],
                  block_length: Optional[int] = None, temperature: float = 0.0,
                  model=None) -> list[dict]:
    """Exact error and rounds of each ``(strategy, knobs)`` in ``settings``: a list of dicts
    with ``strategy``, ``knobs``, ``rounds`` (expected rounds; for ``draft-verify`` its model
    calls), ``tv`` (total variation to the true law), ``kl_model_true`` (``KL(q || p)``, nats),
    ``kl_true_model`` (``KL(p || q)``), ``tc`` (summed expected total correlation of the rounds'
    committed sets, nats), ``information_bits`` and ``max_round_bits`` (the bits-to-rounds
    quantities of :class:`~diffkit.discrete.exact.ExactLaw`). ``model`` defaults to the
    oracle itself."""
    prompt = torch.as_tensor(prompt, dtype=torch.long).reshape(-1)
    truth = true_law(oracle, prompt, gen_length)
    out = []
    for name, knobs in settings:
        law = output_law(oracle, prompt, gen_length, strategy=name,
                                block_length=block_length, temperature=temperature,
                                model=model, **knobs)
        rounds = law.expected_rounds
        if _info(name).lossless is not None:  # the reference's law, fewer model calls
            m = oracle.as_model() if model is None else model
            rounds = float(decode(m, prompt, gen_length, oracle.vocab_size if model is None
                                  else getattr(model, "mask_id", oracle.vocab_size),
                                  strategy=name, block_length=block_length, **knobs).nfe)
        out.append({
            "strategy": name, "knobs": dict(knobs), "rounds": float(rounds),
            "tv": total_variation(law, truth),
            "kl_model_true": kl_divergence(law, truth),
            "kl_true_model": kl_divergence(truth, law),
            "tc": law.total_correlation_sum,
            "information_bits": law.information / LN2,
            "max_round_bits": law.max_round_information / LN2,
        })
    return out


def pareto_front(points: Sequence[dict], x: str = "rounds", y: str = "tv") -> list[dict]:
    """The non-dominated points (no other point has ``x <=`` and ``y <=`` with one strict),
    sorted by ``x``."""
    # expected rounds carry float rounding (2.0000000000000004): compare them to 1e-9
    pts = sorted(points, key=lambda p: (round(p[x], 9), p[y]))
    front, best = [], math.inf
    for p in pts:
        if p[y] < best - 1e-12:
            front.append(p)
            best = p[y]
        elif front and abs(p[y] - best) <= 1e-12 and round(p[x], 9) == round(front[-1][x], 9):
            front.append(p)  # ties the last front point: equally non-dominated
    return front
