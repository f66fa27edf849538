"""One record per decoding strategy: the rule, its options and their bounds, and what the exact
law needs (the image of :mod:`diffkit.samplers.registry` for dLLM decoding).

A rule decides which masked positions one round commits:
``rule(probs, tokens, candidates, budget, ctx, **options) -> [batch, L] bool``, where ``probs
[batch, L, V]`` is ``softmax(logits)`` in the ranking dtype, ``tokens [batch, L]`` the predicted
tokens, ``candidates`` the masked positions of the current block, ``budget [batch]`` the round's
size from the planner (fixed-size strategies) and ``ctx`` a :class:`RoundContext`.
:func:`~diffkit.discrete.decode`, :func:`~diffkit.discrete.output_law`,
:func:`~diffkit.discrete.strategy_grid`, the Pareto plot and the demo tab read these records, so a
new rule is one registration here and one test.

Record fields (:class:`Strategy`): ``fixed_schedule`` (rounds sized by the planner from
``steps``; otherwise a block is decoded until it has no mask), ``lossless`` (the strategy whose
output it reproduces exactly, if any), ``walk`` (how the exact law enumerates a round:
``"set"`` the committed set does not depend on the sampled tokens, ``"tokens"`` it does, so the
joint draw is enumerated, ``"special"`` handled by its own code), ``random`` (the rule draws
its own randomness; then ``branches`` gives the law of its choice), ``remasks`` (it may take
committed tokens back), ``logits_hook`` (edits the logits before the token choice, with state
kept per block), ``options`` (name, default, bounds, help), ``grid`` (the settings a Pareto plot
sweeps), ``paper``.

Ties between equal scores go to the lower position (a stable sort) in float64 ranking; with
``rank_dtype="logits"`` the top-k rules call :func:`torch.topk` on the logits' own dtype, as the
LLaDA and Dream references do.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import Tensor

__all__ = ["Option", "Strategy", "RoundContext", "register", "info", "available", "options_of",
           "check_options", "confidence", "margin", "neg_entropy", "topk_mask", "top2_gap",
           "prophet_go", "PROPHET_GAPS", "uniform"]

#: Prophet's phase thresholds on the top-2 log-probability gap (early, middle, late third)
PROPHET_GAPS = (7.5, 5.0, 2.5)


# ---------------------------------------------------------------------- records
@dataclass(frozen=True)
class Option:
    """A strategy option: ``kind`` ``"float"`` / ``"int"`` / ``"choice"``; numbers lie in
    ``[low, high]`` (``open_low``: ``low`` excluded); ``None`` default means "off"."""

    name: str
    default: Any
    low: Optional[float] = None
    high: Optional[float] = None
    kind: str = "float"
    choices: tuple = ()
    open_low: bool = False
    help: str = ""

    def check(self, value):
        """The validated value; ``ValueError``/``TypeError`` naming the option otherwise."""
        if value is None and self.default is None:
            return None
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{self.name} must be one of {self.choices}, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) and not (
                isinstance(value, Tensor) and value.numel() == 1):
            raise TypeError(f"{self.name} must be a number, got {type(value).__name__}")
        v = float(value)
        if math.isnan(v):
            raise ValueError(f"{self.name} must not be NaN")
        if self.kind == "int":
            if not v.is_integer():
                raise ValueError(f"{self.name} must be a whole number, got {value}")
            v = int(v)
        lo_bad = self.low is not None and (v <= self.low if self.open_low else v < self.low)
        hi_bad = self.high is not None and v > self.high
        if lo_bad or hi_bad or (self.kind == "float" and math.isinf(v) and self.high is None):
            lo = "(" if self.open_low else "["
            raise ValueError(f"{self.name} must lie in {lo}{self.low}, {self.high}], got {value}")
        return v


@dataclass(frozen=True)
class Strategy:
    """A registered decoding strategy (see the module docstring)."""

    name: str
    rule: Callable
    options: tuple = ()
    fixed_schedule: bool = False
    lossless: Optional[str] = None
    walk: str = "tokens"
    random: bool = False
    branches: Optional[Callable] = None
    remasks: bool = False
    revoke: Optional[Callable] = None
    revoke_branches: Optional[Callable] = None
    logits_hook: Optional[Callable] = None
    leave_one_out: bool = False
    cacheable: bool = True
    ranked: bool = False
    grid: tuple = ()
    paper: str = ""
    color: str = "#333333"

    def option(self, name: str) -> Option:
        return next(o for o in self.options if o.name == name)


@dataclass
class RoundContext:
    """What a rule may read besides the probabilities: the round's ``logits`` (after the
    decoder's edits), the current sequence ``x``, ``mask_id``, the block ``[start, end)``,
    ``remaining`` (every masked generation position), ``round`` (0-based within the block) and
    ``progress`` (``round / rounds``), the ``generator``, ``rank_dtype``, ``alg_temp``, ``state``
    (a dict kept for the block), ``drafts`` (positions committed earlier in this block that a
    revocable rule may take back), ``loo`` (for leave-one-out rules: the probability of each
    draft's token with that position masked, NaN elsewhere), ``last`` (the block's last round:
    commit everything), ``gen_start`` (the first generated position; random draws made with
    per-row generators cover ``[gen_start, L)`` only, see :func:`uniform`)."""

    logits: Tensor
    x: Tensor
    mask_id: int
    block: tuple
    remaining: Tensor
    round: int = 0
    progress: float = 0.0
    rounds: int = 1
    generator: Optional[torch.Generator] = None
    rank_dtype: str = "float64"
    alg_temp: Optional[float] = None
    state: dict = field(default_factory=dict)
    drafts: Optional[Tensor] = None
    loo: Optional[Tensor] = None
    last: bool = False
    gen_start: int = 0


def uniform(shape, generator, device=None, start: int = 0, active: Optional[Tensor] = None,
            fill: float = 1.0) -> Tensor:
    """Uniform ``[0, 1)`` float64 draws of ``shape = (batch, L, ...)``.

    ``generator``: one :class:`torch.Generator` (or ``None``) draws the whole tensor at once;
    a list of one generator per row draws row ``j`` from ``generator[j]``, over positions
    ``[start, L)`` only and only when ``active[j]`` (default: every row); other entries are
    ``fill``. With per-row generators a row's draws are those it gets when decoded alone, whatever
    the batch and the row's left padding (``start`` is the first generated position)."""
    if not isinstance(generator, (list, tuple)):
        return torch.rand(tuple(shape), generator=generator, dtype=torch.float64, device=device)
    out = torch.full(tuple(shape), fill, dtype=torch.float64, device=device)
    for j, g in enumerate(generator):
        if active is None or bool(active[j]):
            out[j, start:] = torch.rand((shape[1] - start, *shape[2:]), generator=g,
                                        dtype=torch.float64, device=device)
    return out


_REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    """Add ``strategy`` to the registry (its name must be new)."""
    if strategy.name in _REGISTRY:
        raise ValueError(f"strategy {strategy.name!r} is registered already")
    _REGISTRY[strategy.name] = strategy
    return strategy


def available() -> tuple[str, ...]:
    """The registered strategy names, in the course's order."""
    return tuple(_REGISTRY)


def info(name) -> Strategy:
    """The :class:`Strategy` record of ``name``; ``ValueError`` naming the allowed values."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"strategy must be one of {available()}, got {name!r}")
    return _REGISTRY[name]


def options_of(name: str) -> dict:
    """``{option: default}`` of a strategy."""
    return {o.name: o.default for o in info(name).options}


def check_options(name: str, given: dict) -> dict:
    """Every option of ``name`` validated, defaults filled in; ``ValueError`` for unknown ones."""
    s = info(name)
    allowed = {o.name for o in s.options}
    bad = set(given) - allowed
    if bad:
        raise ValueError(f"unknown option(s) {sorted(bad)} for strategy {name!r}; "
                         f"allowed: {sorted(allowed)}")
    return {o.name: o.check(given.get(o.name, o.default)) for o in s.options}


# ---------------------------------------------------------------------- scores
def confidence(probs: Tensor, tokens: Tensor) -> Tensor:
    """``p(token)`` at every position."""
    return probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def margin(probs: Tensor) -> Tensor:
    """Top-1 minus top-2 probability (Dream's ``topk_margin``)."""
    if probs.shape[-1] < 2:
        return probs[..., 0]
    top = probs.topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


def neg_entropy(probs: Tensor, reference: bool = False) -> Tensor:
    """``-H(p)`` (larger commits first). ``reference=True``: Dream's ``sum p log(p + 1e-10)``
    in the probabilities' dtype; otherwise ``0 log 0 = 0`` exactly."""
    if reference:
        return (probs * torch.log(probs + 1e-10)).sum(-1)
    return torch.where(probs > 0, probs * torch.log(probs.clamp_min(1e-300)),
                       torch.zeros_like(probs)).sum(-1)


def top2_gap(logits: Tensor) -> Tensor:
    """Top-1 minus top-2 log-probability ``[batch, L]`` (Prophet's confidence gap)."""
    logp = torch.log_softmax(logits.to(torch.float64), -1)
    top = logp.topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


def topk_mask(score: Tensor, candidates: Tensor, k: Tensor, reference_op: bool = False) -> Tensor:
    """``[batch, L]`` bool: per row the ``k[row]`` candidates of largest score, ties to the lower
    position (a stable sort); ``reference_op=True`` uses :func:`torch.topk` on the whole row, row
    by row, as LLaDA's and Dream's code do (their tie order)."""
    s = torch.where(candidates, score, torch.full_like(score, -math.inf))
    k = torch.minimum(torch.as_tensor(k, device=s.device).reshape(-1), candidates.sum(-1))
    if reference_op:
        out = torch.zeros_like(candidates)
        for j in range(s.shape[0]):
            if int(k[j]) > 0:
                out[j, torch.topk(s[j], int(k[j])).indices] = True
        return out & candidates
    order = torch.sort(s, dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(s.shape[-1], device=s.device).expand_as(order))
    return (rank < k.reshape(-1, 1)) & candidates


def _best(score: Tensor, candidates: Tensor) -> Tensor:
    return topk_mask(score, candidates, torch.ones(score.shape[0], dtype=torch.long, device=score.device))


# ---------------------------------------------------------------------- the rules
def _position_sample(score: Tensor, candidates: Tensor, k: Tensor, alg_temp: float, generator) -> Tensor:
    # (a list of generators: row j draws from generator[j])
    """Dream's ``alg_temp``: ``k`` positions drawn without replacement with probabilities
    ``softmax(score / alg_temp)`` over the candidates."""
    out = torch.zeros_like(candidates)
    w = torch.softmax(torch.where(candidates, score.to(torch.float64) / alg_temp,
                                  torch.full_like(score, -math.inf, dtype=torch.float64)), -1)
    for j in range(score.shape[0]):
        kj = int(min(int(k[j]), int(candidates[j].sum())))
        if kj > 0:
            g = generator[j] if isinstance(generator, (list, tuple)) else generator
            out[j, torch.multinomial(w[j], kj, replacement=False, generator=g)] = True
    return out


def _ranked_rule(score_fn):
    def rule(probs, tokens, candidates, budget, ctx, **_):
        reference = ctx.rank_dtype == "logits"
        score = score_fn(probs, tokens, reference)
        if ctx.alg_temp:
            return _position_sample(score, candidates, budget, ctx.alg_temp, ctx.generator)
        return topk_mask(score, candidates, budget, reference_op=reference)

    def branches(probs, tokens, candidates, budget, ctx, **_):
        """The law of the committed set: a point mass, or Dream's draw without replacement."""
        score = score_fn(probs, tokens, ctx.rank_dtype == "logits")
        if not ctx.alg_temp:
            return [(rule(probs, tokens, candidates, budget, ctx), 1.0)]
        pos = candidates[0].nonzero().flatten().tolist()
        k = min(int(budget[0]), len(pos))
        w = torch.softmax(score[0, pos].to(torch.float64) / ctx.alg_temp, -1).tolist()
        law: dict = {}
        for perm in itertools.permutations(range(len(pos)), k):
            p, left = 1.0, 1.0
            for i in perm:
                p *= w[i] / left if left > 0 else 0.0
                left -= w[i]
            key = tuple(sorted(pos[i] for i in perm))
            law[key] = law.get(key, 0.0) + p
        out = []
        for key, p in law.items():
            m = torch.zeros_like(candidates)
            m[0, list(key)] = True
            out.append((m, p))
        return out

    return rule, branches


def _random_rule(probs, tokens, candidates, budget, ctx, **_):
    u = uniform(tokens.shape, ctx.generator, tokens.device, ctx.gen_start, candidates.any(-1))
    return topk_mask(u, candidates, budget)


def _random_branches(probs, tokens, candidates, budget, ctx, **_):
    pos = candidates[0].nonzero().flatten().tolist()
    k = min(int(budget[0]), len(pos))
    subsets = list(itertools.combinations(pos, k))
    out = []
    for s in subsets:
        m = torch.zeros_like(candidates)
        m[0, list(s)] = True
        out.append((m, 1.0 / len(subsets)))
    return out


def _threshold_rule(probs, tokens, candidates, budget, ctx, threshold=0.9, **_):
    c = confidence(probs, tokens)
    return _best(c, candidates) | (candidates & (c >= threshold))


def _factor_rule(probs, tokens, candidates, budget, ctx, factor=1.0, **_):
    c = torch.where(candidates, confidence(probs, tokens), torch.full_like(probs[..., 0], -math.inf))
    sorted_c = torch.sort(c, dim=-1, descending=True, stable=True).values
    n = torch.arange(1, c.shape[-1] + 1, device=c.device, dtype=sorted_c.dtype)
    ok = ((n + 1) * (1 - sorted_c) < factor) & torch.isfinite(sorted_c)
    # the condition is monotone in n (c_(n) decreases), so the largest n is the count
    return topk_mask(c, candidates, torch.clamp(ok.sum(-1), min=1))


def prophet_go(logits: Tensor, remaining: Tensor, progress: float = 0.0, gap=None,
               reduce: str = "min") -> Tensor:
    """Prophet's early-commit test ``[batch]`` bool: the top-2 log-probability gap over the
    ``remaining`` masked positions (its minimum, or its mean with ``reduce="mean"``) reaches
    ``gap`` (default: Prophet's phase thresholds by ``progress``)."""
    g = top2_gap(logits)
    thr = PROPHET_GAPS[min(int(progress * 3), 2)] if gap is None else gap
    if reduce == "min":
        level = torch.where(remaining, g, torch.full_like(g, math.inf)).min(-1).values
    else:
        level = torch.where(remaining, g, torch.zeros_like(g)).sum(-1) / remaining.sum(-1).clamp_min(1)
    return (level >= float(thr)) & remaining.any(-1)


def _prophet_rule(probs, tokens, candidates, budget, ctx, gap=None, reduce="min", **_):
    go = prophet_go(ctx.logits, ctx.remaining, ctx.progress, gap, reduce)
    base = topk_mask(confidence(probs, tokens), candidates, budget)
    return torch.where(go.unsqueeze(-1), ctx.remaining, base)


def _eb_rule(probs, tokens, candidates, budget, ctx, gamma=0.1, **_):
    """EB-sampler: candidates sorted by entropy (ascending, the error proxy); the longest prefix
    whose summed entropy minus its largest entropy is ``<= gamma`` (at least one)."""
    h = -neg_entropy(probs)
    h = torch.where(candidates, h, torch.full_like(h, math.inf))
    sorted_h = torch.sort(h, dim=-1, stable=True).values
    finite = torch.isfinite(sorted_h)
    z = torch.where(finite, sorted_h, torch.zeros_like(sorted_h))
    ok = ((z.cumsum(-1) - z.cummax(-1).values) <= gamma) & finite
    k = torch.clamp(ok.sum(-1), min=1)
    return topk_mask(-h, candidates, k)


def _credit_hook(logits: Tensor, ctx: RoundContext, masked: Tensor, alpha=0.7, boost=0.2, decay=0.8, **_):
    """dInfer's credit fusion: a per-block matrix ``C[b, i, v]``, decayed by ``decay`` each round
    after the first, gains ``p_top1 ** boost`` at each masked position's top-1 token; the round
    decides on ``logits + alpha log(1 + C)``."""
    c = ctx.state.get("credit")
    if c is None or c.shape != logits.shape:
        c = torch.zeros(logits.shape, dtype=torch.float64, device=logits.device)
    else:
        c = c * decay
    p = torch.softmax(logits.to(torch.float64), -1)
    top, idx = p.max(-1)
    c = c.scatter_add(-1, idx.unsqueeze(-1), (top.pow(boost) * masked).unsqueeze(-1))
    ctx.state["credit"] = c
    return logits.to(torch.float64) + alpha * torch.log1p(c)


def _credit_rule(probs, tokens, candidates, budget, ctx, threshold=0.9, **_):
    return _threshold_rule(probs, tokens, candidates, budget, ctx, threshold=threshold)


def _hierarchy_rule(probs, tokens, candidates, budget, ctx, threshold=0.9, low_threshold=0.4, **_):
    """dInfer's hierarchical decoding: the best position of every contiguous run of candidates
    whose confidence exceeds ``low_threshold``, plus every candidate above ``threshold``; when no
    candidate exceeds ``low_threshold``, the single best one."""
    c = torch.where(candidates, confidence(probs, tokens), torch.full_like(probs[..., 0], -math.inf))
    out = torch.zeros_like(candidates)
    for j in range(c.shape[0]):
        pos = candidates[j].nonzero().flatten().tolist()
        if not pos:
            continue
        if float(c[j, pos].max()) < low_threshold:
            out[j] |= _best(c[j:j + 1], candidates[j:j + 1])[0]
            continue
        runs, run = [], [pos[0]]
        for p in pos[1:]:
            if p == run[-1] + 1:
                run.append(p)
            else:
                runs.append(run)
                run = [p]
        runs.append(run)
        for run in runs:
            best = max(run, key=lambda i: (float(c[j, i]), -i))
            if float(c[j, best]) > low_threshold:
                out[j, best] = True
    return out | (candidates & (c > threshold))


# ReMDM (Wang et al. 2025): per-step law with the linear schedule alpha_t = 1 - t on the grid
# t_i = 1 - i / S of the block's S rounds; "cap" remasks with sigma = min(eta, (1 - a_s) / a_t).
def remdm_probabilities(round_: int, rounds: int, eta: float) -> tuple[float, float]:
    """``(p_unmask, sigma)`` of ReMDM-cap's step ``round_`` of ``rounds``: a masked position is
    committed with probability ``(a_s - (1 - sigma) a_t) / (1 - a_t)``, a committed one is
    remasked with probability ``sigma = min(eta, 1, (1 - a_s) / a_t)`` (Wang et al. 2025, eq. 7 and
    the "max-capped" schedule, with ``alpha_t = 1 - t``). The last step commits every mask and
    remasks nothing."""
    t = 1.0 - round_ / rounds
    s = 1.0 - (round_ + 1) / rounds
    a_t, a_s = 1.0 - t, 1.0 - s
    sigma = min(eta, 1.0, (1.0 - a_s) / a_t) if a_t > 0 else 0.0
    p = (a_s - (1.0 - sigma) * a_t) / (1.0 - a_t) if a_t < 1 else 1.0
    return min(max(p, 0.0), 1.0), max(sigma, 0.0)


def _remdm_rule(probs, tokens, candidates, budget, ctx, eta=0.05, **_):
    p, _ = remdm_probabilities(ctx.round, ctx.rounds, eta)
    if ctx.last:
        return candidates.clone()
    u = uniform(candidates.shape, ctx.generator, candidates.device, ctx.gen_start)
    return candidates & (u < p)


def _remdm_revoke(probs, tokens, x, ctx, eta=0.05, **_):
    _, sigma = remdm_probabilities(ctx.round, ctx.rounds, eta)
    if ctx.last or sigma <= 0:
        return torch.zeros_like(ctx.drafts)
    u = uniform(ctx.drafts.shape, ctx.generator, x.device, ctx.gen_start)
    return ctx.drafts & (u < sigma)


def _subset_law(positions: list, p: float, like: Tensor) -> list:
    """Every subset of ``positions`` with its probability when each is taken independently
    with probability ``p``."""
    out = []
    for bits in itertools.product((0, 1), repeat=len(positions)):
        k = sum(bits)
        w = (p ** k) * ((1 - p) ** (len(positions) - k))
        if w > 0:
            m = torch.zeros_like(like)
            m[0, [q for q, b in zip(positions, bits) if b]] = True
            out.append((m, w))
    return out


def _remdm_branches(probs, tokens, candidates, budget, ctx, eta=0.05, **_):
    if ctx.last:
        return [(candidates.clone(), 1.0)]
    p, _ = remdm_probabilities(ctx.round, ctx.rounds, eta)
    return _subset_law(candidates[0].nonzero().flatten().tolist(), p, candidates)


def _remdm_revoke_branches(probs, tokens, x, ctx, eta=0.05, **_):
    _, sigma = remdm_probabilities(ctx.round, ctx.rounds, eta)
    if ctx.last or sigma <= 0:
        return [(torch.zeros_like(ctx.drafts), 1.0)]
    return _subset_law(ctx.drafts[0].nonzero().flatten().tolist(), sigma, ctx.drafts)


def _wino_rule(probs, tokens, candidates, budget, ctx, wide=0.6, narrow=0.9, max_rounds=None, **_):
    """WINO's wide-in: every candidate with confidence ``>= wide`` (at least the best one); at the
    block's last allowed round, every candidate."""
    if ctx.last:
        return candidates.clone()
    return _threshold_rule(probs, tokens, candidates, budget, ctx, threshold=wide)


def _wino_revoke(probs, tokens, x, ctx, wide=0.6, narrow=0.9, max_rounds=None, **_):
    """WINO's narrow-out: a draft whose token has leave-one-out probability ``< narrow`` (the
    model's prediction at that position with the position masked and everything else visible,
    WINO's shadow block) is masked again."""
    if ctx.last or ctx.loo is None:
        return torch.zeros_like(ctx.drafts)
    return ctx.drafts & (torch.nan_to_num(ctx.loo, nan=1.0) < narrow)


# ---------------------------------------------------------------------- registrations
_STEPS_GRID = ()  # fixed-schedule strategies sweep every valid `steps` (see strategy_grid)

_conf_rule, _conf_branches = _ranked_rule(lambda p, t, ref: confidence(p, t))
_margin_rule, _margin_branches = _ranked_rule(lambda p, t, ref: margin(p))
_entropy_rule, _entropy_branches = _ranked_rule(lambda p, t, ref: neg_entropy(p, ref))

register(Strategy("random", _random_rule, fixed_schedule=True, walk="set", random=True,
                  branches=_random_branches, color="#7f7f7f",
                  paper="LLaDA's random remasking (Nie et al. 2025)"))
register(Strategy("confidence", _conf_rule, fixed_schedule=True, walk="tokens", ranked=True,
                  branches=_conf_branches, color="#1f77b4",
                  paper="LLaDA's low_confidence remasking (Nie et al. 2025, Alg. 4); Dream's maskgit_plus"))
register(Strategy("margin", _margin_rule, fixed_schedule=True, walk="set", ranked=True,
                  branches=_margin_branches, color="#ff7f0e",
                  paper="Dream's topk_margin (Ye et al. 2025; Kim et al. 2025)"))
register(Strategy("entropy", _entropy_rule, fixed_schedule=True, walk="set", ranked=True,
                  branches=_entropy_branches, color="#2ca02c", paper="Dream's entropy (Ye et al. 2025)"))
register(Strategy("threshold", _threshold_rule, color="#d62728",
                  options=(Option("threshold", 0.9, 0.0, 1.0, open_low=True,
                                  help="commit every candidate with confidence >= threshold"),),
                  grid=tuple({"threshold": v} for v in (0.5, 0.7, 0.9)),
                  paper="Fast-dLLM threshold rule (Wu et al. 2025, Sec. 3.3)"))
register(Strategy("factor", _factor_rule, color="#9467bd",
                  options=(Option("factor", 1.0, 0.0, 1e6, open_low=True,
                                  help="largest n with (n + 1)(1 - c_(n)) < factor"),),
                  grid=tuple({"factor": v} for v in (0.5, 1.0, 2.0)),
                  paper="Fast-dLLM factor rule (Wu et al. 2025)"))
register(Strategy("prophet", _prophet_rule, fixed_schedule=True, walk="special", color="#8c564b",
                  options=(Option("gap", None, 0.0, math.inf, help="fixed top-2 log-probability gap (inf: never)"),
                           Option("reduce", "min", kind="choice", choices=("min", "mean"))),
                  paper="Prophet (Li et al. 2025)"))
register(Strategy("draft-verify", _conf_rule, lossless="confidence", walk="special", cacheable=False,
                  color="#e377c2",
                  options=(Option("draft", 8, 1, 4096, kind="int", help="drafted tokens per call"),),
                  grid=({"draft": 8},),
                  paper="lossless draft-and-verify of one-token confidence decoding"))
register(Strategy("eb", _eb_rule, walk="set", color="#17becf",
                  options=(Option("gamma", 0.1, 0.0, 1e6, help="entropy bound (nats)"),),
                  grid=tuple({"gamma": v} for v in (0.01, 0.1, 1.0)),
                  paper="EB-sampler (Ben-Hamu et al. 2025)"))
register(Strategy("credit", _credit_rule, logits_hook=_credit_hook, color="#bcbd22",
                  options=(Option("threshold", 0.9, 0.0, 1.0, open_low=True),
                           Option("alpha", 0.7, 0.0, 100.0, help="weight of log(1 + credit)"),
                           Option("boost", 0.2, 0.0, 100.0, help="credit gain p_top1 ** boost"),
                           Option("decay", 0.8, 0.0, 1.0, help="credit decay per round")),
                  grid=tuple({"threshold": v} for v in (0.5, 0.7, 0.9)),
                  paper="dInfer credit decoding (Ma et al. 2025)"))
register(Strategy("hierarchy", _hierarchy_rule, color="#aec7e8",
                  options=(Option("threshold", 0.9, 0.0, 1.0, open_low=True),
                           Option("low_threshold", 0.4, 0.0, 1.0)),
                  grid=tuple({"low_threshold": v} for v in (0.2, 0.4, 0.6)),
                  paper="dInfer hierarchical decoding (Ma et al. 2025)"))
register(Strategy("remdm", _remdm_rule, fixed_schedule=True, walk="set", random=True,
                  branches=_remdm_branches, remasks=True, revoke=_remdm_revoke,
                  revoke_branches=_remdm_revoke_branches, color="#ffbb78",
                  options=(Option("eta", 0.05, 0.0, 1.0, help="remasking cap"),),
                  grid=tuple({"eta": v} for v in (0.0, 0.05, 0.2)),
                  paper="ReMDM-cap (Wang et al. 2025)"))
register(Strategy("wino", _wino_rule, remasks=True, revoke=_wino_revoke, leave_one_out=True,
                  cacheable=False, color="#98df8a",
                  options=(Option("wide", 0.6, 0.0, 1.0, open_low=True, help="wide-in threshold"),
                           Option("narrow", 0.9, 0.0, 1.0, help="narrow-out threshold"),
                           Option("max_rounds", None, 1, 1 << 20, kind="int",
                                  help="rounds per block before every mask is committed "
                                       "(default 2 x block_length)")),
                  grid=tuple({"wide": v} for v in (0.5, 0.7, 0.9)),
                  paper="WINO (Hong et al. 2025)"))
