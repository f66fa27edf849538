"""Decoding a masked diffusion language model (dLLM): which masked positions to commit, round by
round.

The generation region starts fully masked. Each *round* calls the model once on the current
sequence, predicts a token at every masked position (greedy at ``temperature=0``, otherwise the
Gumbel-max sample of ``softmax(logits / temperature)``), and commits some of them; committed tokens
are never changed. Strategies differ only in which positions they commit:

| strategy | rule (paper) |
| --- | --- |
| ``random`` | a uniformly random subset of the round's size (LLaDA's ``random`` remasking; Nie et al. 2025) |
| ``confidence`` | the most probable predictions (LLaDA's ``low_confidence`` remasking, Nie et al. 2025, Alg. 4 / ``generate.py``) |
| ``margin`` | largest top-1 minus top-2 probability (Dream's ``topk_margin``; Ye et al. 2025; Kim et al. 2025) |
| ``entropy`` | smallest entropy of the predicted distribution (Dream's ``entropy``) |
| ``threshold`` | every position whose confidence is ``>= threshold``, at least the most confident one (Fast-dLLM, Wu et al. 2025, Sec. 3.3) |
| ``factor`` | the ``n`` most confident, ``n`` the largest with ``(n + 1)(1 - c_(n)) < factor``, at least 1 (Fast-dLLM's factor rule as its paper states it; ``c_(n)`` the n-th largest confidence) |
| ``prophet`` | ``confidence``, but once the top-2 log-probability gap passes a threshold at every remaining position, commit them all at once (Prophet, Li et al. 2025, "Diffusion language models know the answer before decoding") |
| ``draft-verify`` | lossless acceleration of one-token-per-round ``confidence`` decoding (see below) |

Schedule (semi-autoregressive blocks, LLaDA): the generation region is split into
``gen_length // block_length`` blocks decoded left to right; only positions of the current block
may be committed. For the fixed-size strategies (``random``, ``confidence``, ``margin``,
``entropy``, ``prophet``) each block gets ``steps // num_blocks`` rounds and its masked positions
are split evenly over them, the remainder going to the earliest rounds (LLaDA's
``get_num_transfer_tokens``). Rounds that would commit nothing (``steps`` larger than the block)
are skipped without a model call; the reference still calls the model there, the tokens are the
same. ``threshold`` and ``factor`` ignore ``steps``: a block is decoded until it has no mask.

With ``temperature = 0`` and ``strategy="confidence"`` this reproduces LLaDA's reference
``generate()`` (its ``low_confidence`` remasking) exactly; the confidence of a prediction is the
probability that ``softmax(logits)`` gives the chosen token (also when the token was sampled at a
temperature, as in the reference). Ties are broken towards the lower position.

``draft-verify``: lossless against ``confidence`` with ``steps = gen_length`` (one token per round)
at temperature 0: from one call's logits, the positions of the block ordered by confidence form a
draft of the next ``draft`` greedy choices; one model call evaluates, as one batch, the sequences
with the first ``1 .. draft`` drafted tokens committed, and the longest prefix of the draft that the
greedy rule confirms on those sequences is accepted (at least one token). The output equals the
one-token-per-round output token for token; ``nfe`` counts calls (each call may hold several
sequences per row; ``evaluations`` counts sequences). It calls the model on batches larger than
the prompt's, so it does not use ``begin_block`` (no cache).

Cache protocol: if the model has a method ``begin_block(tokens, start, end)``, :func:`decode`
calls it before the first round of each block (that has masks) with the current tokens and the
block's absolute positions ``[start, end)``.

Vocabulary convention: see :mod:`diffkit.discrete.hmm` (``mask_id`` is never predicted: its logit
is excluded when choosing a token).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import Tensor

__all__ = ["STRATEGIES", "strategies", "decode", "DecodeOutput", "Round", "num_transfer_tokens",
           "predict", "scores", "select", "topk_mask", "prophet_go", "top2_gap", "FIXED_SCHEDULE"]

STRATEGIES = ("random", "confidence", "margin", "entropy", "threshold", "factor", "prophet",
              "draft-verify")
#: strategies whose rounds follow LLaDA's per-block schedule of ``steps``
FIXED_SCHEDULE = ("random", "confidence", "margin", "entropy", "prophet")
_OPTIONS = {"factor": {"factor"}, "prophet": {"gap", "reduce"}, "draft-verify": {"draft"}}
#: Prophet's phase thresholds on the top-2 logit gap (early, middle, late third of the rounds)
PROPHET_GAPS = (7.5, 5.0, 2.5)


def strategies() -> tuple[str, ...]:
    """The names accepted by :func:`decode`'s ``strategy``."""
    return STRATEGIES


@dataclass
class Round:
    """One decoding round. ``committed [batch, L]`` bool: positions committed in this round;
    ``confidence [batch, L]`` float64: ``softmax(logits)`` of the predicted token at the round's
    candidate positions (NaN elsewhere); ``block``: the block's ``[start, end)``."""

    block: tuple[int, int]
    committed: Tensor
    confidence: Tensor


@dataclass
class DecodeOutput:
    """``tokens [batch, prompt_len + gen_length]``, ``nfe`` (model calls), ``history`` (one
    :class:`Round` per round), ``evaluations`` (sequences evaluated over all calls)."""

    tokens: Tensor
    nfe: int
    history: list[Round] = field(default_factory=list)
    evaluations: int = 0

    @property
    def rounds(self) -> int:
        return len(self.history)


# ---------------------------------------------------------------------- pure pieces
def num_transfer_tokens(masked: Tensor, steps: int) -> Tensor:
    """LLaDA's schedule: ``masked [batch]`` counts split evenly over ``steps`` rounds, the
    remainder going to the earliest rounds. Returns ``[batch, steps]`` long."""
    masked = torch.as_tensor(masked).long().reshape(-1)
    base = masked // steps
    rem = masked % steps
    out = base.unsqueeze(1).expand(-1, steps).clone()
    out += (torch.arange(steps, device=masked.device).unsqueeze(0) < rem.unsqueeze(1)).long()
    return out


def predict(logits: Tensor, mask_id: int, temperature: float = 0.0,
            generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor]:
    """The token chosen at every position and ``softmax(logits)`` in float64.

    ``temperature = 0``: the argmax; otherwise the Gumbel-max sample
    ``argmax(logits / T + g)``, ``g`` standard Gumbel from ``generator`` (the sampler of LLaDA's
    ``add_gumbel_noise``, in float64). The mask id is never chosen."""
    logits = logits.to(torch.float64)
    probs = torch.softmax(logits, -1)
    z = logits.clone()
    if 0 <= mask_id < z.shape[-1]:
        z[..., mask_id] = -math.inf
    if temperature > 0:
        u = torch.rand(z.shape, generator=generator, dtype=torch.float64, device=z.device)
        u = u.clamp_min(torch.finfo(torch.float64).tiny)
        z = z / temperature - torch.log(-torch.log(u))
    return z.argmax(-1), probs


def scores(strategy: str, probs: Tensor, tokens: Tensor,
           generator: Optional[torch.Generator] = None) -> Tensor:
    """The per-position score that a fixed-size strategy ranks by (larger commits first):
    confidence ``p(token)``; margin ``p_(1) - p_(2)``; entropy ``-H(p)``; random: uniform noise."""
    if strategy == "random":
        return torch.rand(tokens.shape, generator=generator, dtype=torch.float64, device=tokens.device)
    if strategy in ("confidence", "threshold", "factor", "prophet", "draft-verify"):
        return probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    if strategy == "margin":
        top = probs.topk(2, dim=-1).values if probs.shape[-1] > 1 else torch.cat(
            [probs, torch.zeros_like(probs)], -1)
        return top[..., 0] - top[..., 1]
    if strategy == "entropy":
        return (probs * torch.log(probs.clamp_min(1e-300))).sum(-1)
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")


def topk_mask(score: Tensor, candidates: Tensor, k: Tensor) -> Tensor:
    """``[batch, L]`` bool: per row the ``k[row]`` candidates of largest score, ties to the lower
    position (a stable sort)."""
    s = torch.where(candidates, score, torch.full_like(score, -math.inf))
    order = torch.sort(s, dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(s.shape[-1], device=s.device).expand_as(order))
    k = torch.minimum(torch.as_tensor(k, device=s.device).reshape(-1, 1), candidates.sum(-1, keepdim=True))
    return (rank < k) & candidates


def top2_gap(logits: Tensor) -> Tensor:
    """Top-1 minus top-2 log-probability ``[batch, L]`` (Prophet's confidence gap)."""
    logp = torch.log_softmax(logits.to(torch.float64), -1)
    top = logp.topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


def prophet_go(logits: Tensor, remaining: Tensor, progress: float = 0.0,
               options: Optional[dict] = None) -> Tensor:
    """Prophet's early-commit test ``[batch]`` bool: the top-2 log-probability gap over the
    ``remaining`` masked positions (its minimum, or its mean with ``reduce="mean"``) reaches the
    threshold ``gap`` (default: Prophet's phase thresholds by ``progress``)."""
    options = options or {}
    gap = top2_gap(logits)
    thr = options.get("gap")
    if thr is None:
        thr = PROPHET_GAPS[min(int(progress * 3), 2)]
    if options.get("reduce", "min") == "min":
        level = torch.where(remaining, gap, torch.full_like(gap, math.inf)).min(-1).values
    else:
        level = torch.where(remaining, gap, torch.zeros_like(gap)).sum(-1) / remaining.sum(-1).clamp_min(1)
    return (level >= float(thr)) & remaining.any(-1)


def select(strategy: str, probs: Tensor, tokens: Tensor, candidates: Tensor, budget: Tensor,
           *, threshold: Optional[float] = None, remaining: Optional[Tensor] = None,
           logits: Optional[Tensor] = None, progress: float = 0.0,
           generator: Optional[torch.Generator] = None, options: Optional[dict] = None) -> Tensor:
    """Which positions a strategy commits in one round: ``[batch, L]`` bool.

    ``probs [batch, L, V]`` float64 and ``tokens [batch, L]`` from :func:`predict`;
    ``candidates``: masked positions of the current block; ``budget [batch]``: the round's size
    from the schedule (fixed-size strategies); ``remaining``: every masked position of the
    generation (Prophet's early commit); ``progress`` in ``[0, 1)``: the round's place in the
    block's schedule (Prophet's phases).
    """
    options = options or {}
    conf = scores("confidence", probs, tokens)
    if strategy in ("random", "confidence", "margin", "entropy"):
        return topk_mask(scores(strategy, probs, tokens, generator), candidates, budget)
    ones = torch.ones(tokens.shape[0], dtype=torch.long, device=tokens.device)
    if strategy == "threshold":
        thr = 0.9 if threshold is None else threshold
        return (topk_mask(conf, candidates, ones) | (candidates & (conf >= thr)))
    if strategy == "factor":
        f = float(options.get("factor", 1.0))
        c = torch.where(candidates, conf, torch.full_like(conf, -math.inf))
        sorted_c = torch.sort(c, dim=-1, descending=True, stable=True).values
        n = torch.arange(1, c.shape[-1] + 1, device=c.device, dtype=torch.float64)
        ok = ((n + 1) * (1 - sorted_c) < f) & torch.isfinite(sorted_c)
        # the condition is monotone in n (c_(n) decreases), so the largest n is the count
        count = torch.clamp(ok.sum(-1), min=1)
        return topk_mask(conf, candidates, count)
    if strategy == "prophet":
        remaining = candidates if remaining is None else remaining
        if logits is None:
            logits = torch.log(probs.clamp_min(1e-300))
        go = prophet_go(logits, remaining, progress, options)
        base = topk_mask(conf, candidates, budget)
        return torch.where(go.unsqueeze(-1), remaining, base)
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")


# ---------------------------------------------------------------------- validation
def _call(model: Callable, x: Tensor) -> Tensor:
    logits = model(x)
    if hasattr(logits, "logits") and not isinstance(logits, Tensor):
        logits = logits.logits
    if not isinstance(logits, Tensor) or logits.dim() != 3 or logits.shape[:2] != x.shape:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"model must return logits of shape [batch, length, vocab] = "
                         f"[{x.shape[0]}, {x.shape[1]}, V], got {shape}")
    return logits


def _check(prompt, gen_length, mask_id, steps, strategy, block_length, temperature, threshold,
           options) -> tuple[Tensor, int, int]:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    prompt = torch.as_tensor(prompt)
    if prompt.dim() == 1:
        prompt = prompt.unsqueeze(0)
    if prompt.dim() != 2 or prompt.dtype.is_floating_point:
        raise ValueError(f"prompt must be integer token ids [batch, prompt_len], got {tuple(prompt.shape)}")
    if (prompt == mask_id).any():
        raise ValueError(f"prompt contains mask_id={mask_id}; the prompt must be fully visible")
    if int(gen_length) < 1:
        raise ValueError(f"gen_length must be >= 1, got {gen_length}")
    block_length = gen_length if block_length is None else int(block_length)
    if block_length < 1 or gen_length % block_length:
        raise ValueError(f"gen_length={gen_length} must be divisible by block_length={block_length}")
    num_blocks = gen_length // block_length
    steps = gen_length if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if strategy in FIXED_SCHEDULE and steps % num_blocks:
        raise ValueError(f"steps={steps} must be a multiple of the number of blocks ({num_blocks})")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if threshold is not None and not (0 < threshold <= 1):
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    allowed = _OPTIONS.get(strategy, set())
    bad = set(options) - allowed
    if bad:
        raise ValueError(f"unknown option(s) {sorted(bad)} for strategy {strategy!r}; "
                         f"allowed: {sorted(allowed)}")
    if strategy == "factor" and float(options.get("factor", 1.0)) <= 0:
        raise ValueError("factor must be > 0")
    if strategy == "prophet" and options.get("reduce", "min") not in ("min", "mean"):
        raise ValueError("reduce must be 'min' or 'mean'")
    if strategy == "draft-verify":
        if temperature != 0:
            raise ValueError("draft-verify is lossless at temperature 0 only")
        if int(options.get("draft", 8)) < 1:
            raise ValueError("draft must be >= 1")
    return prompt.long(), block_length, steps


# ---------------------------------------------------------------------- the front door
def decode(model: Callable[[Tensor], Tensor], prompt: Tensor, gen_length: int, mask_id: int,
           steps: Optional[int] = None, strategy: str = "confidence",
           block_length: Optional[int] = None, temperature: float = 0.0,
           threshold: Optional[float] = None, generator: Optional[torch.Generator] = None,
           **strategy_options) -> DecodeOutput:
    """Decode ``gen_length`` tokens after ``prompt`` ``[batch, P]`` (or ``[P]``) with a masked
    diffusion model ``logits = model(tokens)``. See the module docstring for the strategies, the
    block schedule and the cache protocol.

    ``steps`` (default ``gen_length``): rounds in all, for the fixed-size strategies; a multiple
    of the number of blocks. ``threshold`` in ``(0, 1]``: the ``threshold`` strategy's confidence
    (default 0.9, Fast-dLLM). Options: ``factor`` (``factor``, default 1.0); ``prophet``
    (``gap``: a fixed threshold on the top-2 log-probability gap, default Prophet's phases
    7.5/5.0/2.5 over the first/middle/last third of a block's rounds; ``reduce``: ``"min"``
    (every remaining position, default) or ``"mean"`` (Prophet's average)); ``draft-verify``
    (``draft``: drafted tokens per call, default 8).
    """
    prompt, block_length, steps = _check(prompt, gen_length, mask_id, steps, strategy, block_length,
                                          temperature, threshold, strategy_options)
    batch, plen = prompt.shape
    x = torch.cat([prompt, torch.full((batch, gen_length), mask_id, dtype=torch.long,
                                      device=prompt.device)], 1)
    if strategy == "draft-verify":
        return _draft_verify(model, x, plen, gen_length, block_length, mask_id,
                             int(strategy_options.get("draft", 8)))
    num_blocks = gen_length // block_length
    per_block = steps // num_blocks
    out = DecodeOutput(tokens=x, nfe=0)
    positions = torch.arange(x.shape[1], device=x.device)
    for b in range(num_blocks):
        start, end = plen + b * block_length, plen + (b + 1) * block_length
        in_block = (positions >= start) & (positions < end)
        if not (x[:, start:end] == mask_id).any():
            continue
        if hasattr(model, "begin_block"):
            model.begin_block(x, start, end)
        schedule = num_transfer_tokens((x[:, start:end] == mask_id).sum(1), per_block)
        r = 0
        while (x[:, start:end] == mask_id).any():
            if strategy in FIXED_SCHEDULE:
                if r >= per_block:
                    break
                budget = schedule[:, r]
                if not budget.any():
                    r += 1
                    continue
            else:
                budget = torch.ones(batch, dtype=torch.long, device=x.device)
            logits = _call(model, x)
            out.nfe += 1
            out.evaluations += batch
            tokens, probs = predict(logits, mask_id, temperature, generator)
            masked = x == mask_id
            candidates = masked & in_block
            commit = select(strategy, probs, tokens, candidates, budget, threshold=threshold,
                            remaining=masked & (positions >= plen), logits=logits,
                            progress=r / per_block, generator=generator, options=strategy_options)
            conf = scores("confidence", probs, tokens)
            out.history.append(Round((start, end), commit.clone(),
                                     torch.where(candidates | commit, conf, torch.nan)))
            x = torch.where(commit, tokens, x)
            r += 1
    out.tokens = x
    return out


def _greedy_choice(logits: Tensor, x: Tensor, mask_id: int, start: int, end: int) -> tuple[int, int, float]:
    """One-token-per-round confidence decoding's choice on one sequence ``x [L]``:
    (position, token, confidence), or (-1, -1, nan) when the block has no mask."""
    tokens, probs = predict(logits.unsqueeze(0), mask_id)
    cand = torch.zeros_like(x, dtype=torch.bool)
    cand[start:end] = x[start:end] == mask_id
    if not cand.any():
        return -1, -1, math.nan
    conf = scores("confidence", probs, tokens)[0]
    pick = topk_mask(conf.unsqueeze(0), cand.unsqueeze(0), torch.ones(1, dtype=torch.long))[0]
    i = int(pick.nonzero()[0, 0])
    return i, int(tokens[0, i]), float(conf[i])


def _draft_order(logits: Tensor, x: Tensor, mask_id: int, start: int, end: int, k: int):
    tokens, probs = predict(logits.unsqueeze(0), mask_id)
    conf = scores("confidence", probs, tokens)[0]
    cand = torch.zeros_like(x, dtype=torch.bool)
    cand[start:end] = x[start:end] == mask_id
    s = torch.where(cand, conf, torch.full_like(conf, -math.inf))
    order = torch.sort(s, descending=True, stable=True).indices[: min(k, int(cand.sum()))]
    return [(int(i), int(tokens[0, i]), float(conf[i])) for i in order]


def _draft_verify(model, x: Tensor, plen: int, gen_length: int, block_length: int, mask_id: int,
                  draft: int) -> DecodeOutput:
    """Draft-and-verify, lossless against ``confidence`` with one token per round (temperature 0);
    see the module docstring."""
    batch, length = x.shape
    out = DecodeOutput(tokens=x, nfe=0)
    first = _call(model, x)
    out.nfe, out.evaluations = 1, batch
    current = [first[r] for r in range(batch)]  # logits of each row's current sequence
    x = x.clone()
    while (x[:, plen:] == mask_id).any():
        plans = []  # per row: (drafted states, drafted choices, block start, block end)
        for r in range(batch):
            masked_gen = (x[r, plen:] == mask_id).nonzero()
            if masked_gen.numel() == 0:
                plans.append(None)
                continue
            b = int(masked_gen[0, 0]) // block_length
            start, end = plen + b * block_length, plen + (b + 1) * block_length
            drafts = _draft_order(current[r], x[r], mask_id, start, end, draft)
            states, s = [], x[r]
            for (i, tok, _) in drafts:
                s = s.clone()
                s[i] = tok
                states.append(s)
            plans.append((states, drafts, start, end))
        # one call evaluates every drafted state that still has a mask in its generation region
        flat = [(r, j) for r, p in enumerate(plans) if p is not None
                for j, s in enumerate(p[0]) if (s[plen:] == mask_id).any()]
        new_logits = None
        if flat:
            new_logits = _call(model, torch.stack([plans[r][0][j] for r, j in flat]))
            out.nfe += 1
            out.evaluations += len(flat)
        where = {key: n for n, key in enumerate(flat)}
        committed = torch.zeros_like(x, dtype=torch.bool)
        conf = torch.full(x.shape, torch.nan, dtype=torch.float64, device=x.device)
        block = None
        for r, p in enumerate(plans):
            if p is None:
                continue
            states, drafts, start, end = p
            block = (start, end)
            accepted = [drafts[0]]  # the greedy choice on the row's current logits: always right
            for j in range(len(drafts) - 1):
                if (r, j) not in where:
                    break
                s = states[j]
                sb = int((s[plen:] == mask_id).nonzero()[0, 0]) // block_length
                g = _greedy_choice(new_logits[where[(r, j)]], s, mask_id, plen + sb * block_length,
                                   plen + (sb + 1) * block_length)
                if g[:2] != drafts[j + 1][:2]:
                    break
                accepted.append(g)
            for (i, _, c) in accepted:
                committed[r, i] = True
                conf[r, i] = c
            m = len(accepted)
            x[r] = states[m - 1]
            if (r, m - 1) in where:
                current[r] = new_logits[where[(r, m - 1)]]
        out.history.append(Round(block, committed, conf))
    out.tokens = x
    return out
