"""Decoding a masked diffusion language model (dLLM): which masked positions to commit, round by
round.

The generation region starts fully masked. Each *round* calls the model once on the current
sequence, predicts a token at every masked position (greedy at ``temperature=0``, otherwise the
Gumbel-max sample of ``softmax(logits / temperature)``), and commits some of them. The rule that
picks them is a registered strategy (:mod:`diffkit.discrete.strategies`, one record each;
``strategies()`` lists them):

| strategy | rule (paper) |
| --- | --- |
| ``random`` | a uniformly random subset of the round's size (LLaDA's ``random`` remasking; Nie et al. 2025) |
| ``confidence`` | the most probable predictions (LLaDA's ``low_confidence``, Alg. 4; Dream's ``maskgit_plus``) |
| ``margin`` | largest top-1 minus top-2 probability (Dream's ``topk_margin``; Ye et al. 2025) |
| ``entropy`` | smallest entropy of the predicted distribution (Dream's ``entropy``) |
| ``threshold`` | every position with confidence ``>= threshold``, at least the best one (Fast-dLLM, Wu et al. 2025, Sec. 3.3) |
| ``factor`` | the ``n`` most confident, ``n`` the largest with ``(n + 1)(1 - c_(n)) < factor`` (Fast-dLLM) |
| ``prophet`` | ``confidence``, but all remaining positions at once when the top-2 log-probability gap passes a threshold everywhere (Prophet, Li et al. 2025) |
| ``draft-verify`` | lossless acceleration of one-token-per-round ``confidence`` at temperature 0 (below) |
| ``eb`` | the longest entropy-sorted prefix whose summed entropy minus its largest is ``<= gamma`` (EB-sampler, Ben-Hamu et al. 2025) |
| ``credit`` | threshold on logits plus ``alpha log(1 + credit)``, a per-block running credit of each position's top-1 token (dInfer, Ma et al. 2025) |
| ``hierarchy`` | the best position of every contiguous masked run above ``low_threshold``, plus all above ``threshold`` (dInfer) |
| ``remdm`` | ReMDM-cap: masked positions unmask at random, committed ones are remasked with probability ``sigma_t`` (Wang et al. 2025) |
| ``wino`` | wide-in (commit above ``wide``), narrow-out (take back drafts whose leave-one-out probability falls below ``narrow``) (WINO, Hong et al. 2025) |

Rounds and blocks come from the shared planner (:class:`~diffkit.discrete.planner.Plan`): the
generation is split into ``gen_length // block_length`` blocks decoded left to right; fixed-size
strategies (``random``, ``confidence``, ``margin``, ``entropy``, ``prophet``, ``remdm``) get
``steps // num_blocks`` rounds per block, sized by ``schedule="even"`` (LLaDA) or ``"dream"``
(Dream's timesteps with ``eps``); rounds that would commit nothing are skipped without a model
call (the reference still calls the model there; the tokens are the same). The others decode a
block until it has no mask.

Every loop is bounded by construction: an adaptive rule commits at least one position per row and
round (so at most ``block_length`` rounds per block); a fixed-size rule follows its finite plan;
``wino`` commits every remaining mask at its ``max_rounds``-th round of a block, and ``remdm``
runs exactly its ``steps`` (its last step commits every mask; ``remdm`` is the one rule whose
rounds may commit nothing: its steps are random, as the paper's sampler).

Reference semantics. With ``temperature = 0``, ``strategy="confidence"`` reproduces LLaDA's
``generate()``; ``schedule="dream"`` with ``confidence`` / ``margin`` / ``entropy`` (and one block)
reproduces Dream's ``_sample`` (``maskgit_plus`` / ``topk_margin`` / ``entropy``), and
``alg_temp`` samples the committed positions from ``softmax(score / alg_temp)`` as Dream does.
Ranking precision: by default confidences are computed and ranked in float64 (ties to the lower
position), which makes results independent of the model's dtype; ``rank_dtype="logits"`` computes
them in the logits' own dtype and ranks with :func:`torch.topk`, as LLaDA and Dream do, so in
bfloat16 near-ties order as in the references.

LLaDA's classifier-free guidance (Nie et al. 2025, Sec. B.3): ``cfg_scale = s > 0`` evaluates the
sequence and a copy with the prompt masked in one call and uses ``un + (s + 1)(cond - un)``
(entries ``-inf`` in the conditional logits stay ``-inf``; where only the unconditional ones are
``-inf``, the conditional logit is kept, so models that rule tokens out, as the oracle does, work).
EOS: ``eos_penalty`` is subtracted from the logit of ``eos_id`` *before* the token choice and the
confidence (``inf`` forbids it), so it acts, unlike an edit made after the argmax.

``draft-verify``: lossless against ``confidence`` with one token per round at temperature 0: from
one call's logits, the block's positions ordered by confidence form a draft of the next ``draft``
greedy choices; one call evaluates, as one batch, the sequences with the first ``1 .. draft``
drafted tokens committed, and the longest prefix that the greedy rule confirms is accepted (at
least one token). ``nfe`` counts calls; ``evaluations`` counts sequences.

Cache protocol: if the model has ``begin_decode(cacheable)``, :func:`decode` calls it first
(``cacheable`` is false for ``draft-verify`` and ``wino``, which evaluate more sequences than the
batch: a cache then steps aside); if it has ``begin_block(tokens, start, end)``, :func:`decode`
calls it before the first round of each block that has masks (cacheable strategies only).

Vocabulary convention: see :mod:`diffkit.discrete.hmm` (``mask_id`` is never predicted).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import Tensor

from .. import _checks
from .padding import check_pad_id, leading_pads
from .planner import MAX_DREAM_STEPS, SCHEDULES, Plan, even_split
from .strategies import (
    RoundContext,
    Strategy,
    check_options,
    confidence,
    margin,
    neg_entropy,
    prophet_go,
    top2_gap,
    topk_mask,
    uniform,
)
from .strategies import available as _available
from .strategies import info as _info

__all__ = ["STRATEGIES", "strategies", "decode", "DecodeOutput", "Round", "num_transfer_tokens",
           "predict", "scores", "select", "topk_mask", "prophet_go", "top2_gap", "FIXED_SCHEDULE",
           "Config", "configure", "model_logits", "round_logits", "MAX_LENGTH", "MAX_STEPS", "RANK_DTYPES"]

STRATEGIES = _available()
#: strategies whose rounds follow the planner's per-block schedule of ``steps``
FIXED_SCHEDULE = tuple(n for n in STRATEGIES if _info(n).fixed_schedule)
#: the longest prompt + generation accepted (the sequence is allocated)
MAX_LENGTH = 1 << 20
#: the most rounds accepted: the planner computes rounds lazily (empty ones are skipped), and
#: its round counts stay exact in int64 arithmetic up to this bound
MAX_STEPS = 1 << 62
RANK_DTYPES = ("float64", "logits")


def strategies() -> tuple[str, ...]:
    """The names accepted by :func:`decode`'s ``strategy``."""
    return _available()


@dataclass
class Round:
    """One decoding round. ``committed [batch, L]`` bool: positions committed in this round;
    ``confidence [batch, L]`` float64: ``softmax(logits)`` of the predicted token at the round's
    candidate positions (NaN elsewhere); ``block``: the block's ``[start, end)``; ``revoked``:
    positions a remasking rule took back and ``after``: the sequence after the round (both
    ``None`` for the other rules, whose committed tokens never change)."""

    block: tuple[int, int]
    committed: Tensor
    confidence: Tensor
    revoked: Optional[Tensor] = None
    after: Optional[Tensor] = None


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


# ---------------------------------------------------------------------- validation
def _int(value, name: str, low: int = 0, high: Optional[int] = None) -> int:
    """An integer argument: ints and whole floats; bools, other types and fractions refused."""
    if isinstance(value, Tensor) and value.numel() == 1 and not value.dtype.is_complex:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if isinstance(value, float) or not isinstance(value, numbers.Integral):
        v = float(value)
        if not math.isfinite(v) or not v.is_integer():
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        value = int(v)
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _real(value, name: str, low: float = 0.0, allow_inf: bool = False, open_low: bool = False) -> float:
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if v < low or (open_low and v == low):
        raise ValueError(f"{name} must be {'>' if open_low else '>='} {low}, got {value!r}")
    return v


@dataclass
class Config:
    """A validated decoding request: what :func:`decode` and the exact-law walk both run."""

    prompt: Tensor
    plan: Plan
    strategy: Strategy
    options: dict
    mask_id: int
    temperature: float = 0.0
    rank_dtype: str = "float64"
    alg_temp: Optional[float] = None
    cfg_scale: float = 0.0
    eos_id: Optional[int] = None
    eos_penalty: float = 0.0
    pad_id: Optional[int] = None

    def rounds_cap(self) -> int:
        """Rounds per block at most: the plan's for fixed-size rules, ``block_length`` for
        adaptive ones (each commits >= 1), ``max_rounds`` for ``wino``."""
        if self.strategy.fixed_schedule:
            return self.plan.per_block
        if self.strategy.name == "wino":
            m = self.options.get("max_rounds")
            return int(m) if m is not None else 2 * self.plan.block_length
        return self.plan.block_length


def configure(prompt, gen_length, mask_id, steps=None, strategy="confidence", block_length=None,
              temperature=0.0, threshold=None, schedule="even", eps=1e-3, alg_temp=None,
              rank_dtype="float64", cfg_scale=0.0, eos_id=None, eos_penalty=0.0,
              options: Optional[dict] = None, pad_id=None) -> Config:
    """Validate :func:`decode`'s arguments (each error names its argument) -> :class:`Config`."""
    record = _info(strategy)
    mask_id = _int(mask_id, "mask_id")
    if not isinstance(prompt, Tensor):
        try:
            prompt = torch.as_tensor(prompt)
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"prompt must be integer token ids [batch, prompt_len]: {e}") from None
    if prompt.dim() == 1:
        prompt = prompt.unsqueeze(0)
    if prompt.dim() != 2 or prompt.dtype.is_floating_point or prompt.dtype == torch.bool or prompt.is_complex():
        raise ValueError(f"prompt must be integer token ids [batch, prompt_len], got shape "
                         f"{tuple(prompt.shape)} dtype {prompt.dtype}")
    if prompt.shape[0] < 1:
        raise ValueError("prompt must hold at least one row")
    if (prompt == mask_id).any():
        raise ValueError(f"prompt contains mask_id={mask_id}; the prompt must be fully visible")
    if (prompt < 0).any():
        raise ValueError("prompt token ids must be >= 0")
    pad_id = check_pad_id(pad_id, mask_id)
    gen_length = _int(gen_length, "gen_length", 1, MAX_LENGTH)
    if prompt.shape[1] + gen_length > MAX_LENGTH:
        raise ValueError(f"prompt_len + gen_length must be <= {MAX_LENGTH}")
    block_length = gen_length if block_length is None else _int(block_length, "block_length", 1)
    if gen_length % block_length:
        raise ValueError(f"gen_length={gen_length} must be divisible by block_length={block_length}")
    num_blocks = gen_length // block_length
    steps = gen_length if steps is None else _checks.integer("steps", steps, 1, MAX_STEPS)
    if record.fixed_schedule and steps % num_blocks:
        raise ValueError(f"steps={steps} must be a multiple of the number of blocks ({num_blocks})")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    eps = _real(eps, "eps", 0.0, open_low=True)
    if eps >= 1:
        raise ValueError(f"eps must lie in (0, 1), got {eps}")
    if schedule == "dream" and steps // num_blocks > MAX_DREAM_STEPS:
        raise ValueError(f"steps per block must be <= {MAX_DREAM_STEPS} with schedule='dream', got "
                         f"{steps // num_blocks}")
    temperature = _real(temperature, "temperature", 0.0)
    if alg_temp is not None:
        alg_temp = _real(alg_temp, "alg_temp", 0.0)
        if alg_temp == 0:
            alg_temp = None
        elif not record.ranked:
            raise ValueError(f"alg_temp applies to the ranked strategies "
                             f"{[n for n in STRATEGIES if _info(n).ranked]}, not {strategy!r}")
    if rank_dtype not in RANK_DTYPES:
        raise ValueError(f"rank_dtype must be one of {RANK_DTYPES}, got {rank_dtype!r}")
    cfg_scale = _real(cfg_scale, "cfg_scale", 0.0)
    if eos_id is not None:
        eos_id = _int(eos_id, "eos_id")
        if eos_id == mask_id:
            raise ValueError("eos_id must differ from mask_id")
    eos_penalty = _real(eos_penalty, "eos_penalty", 0.0, allow_inf=True)
    options = dict(options or {})
    if threshold is not None:
        threshold = _real(threshold, "threshold", 0.0, open_low=True)
        if threshold > 1:
            raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
        if any(o.name == "threshold" for o in record.options):
            options.setdefault("threshold", threshold)
    options = check_options(strategy, options)
    if record.name == "draft-verify" and temperature != 0:
        raise ValueError("draft-verify is lossless at temperature 0 only; use temperature=0")
    if record.name == "wino" and options["narrow"] < options["wide"]:
        raise ValueError("narrow must be >= wide (WINO verifies with the stricter threshold)")
    if record.name == "hierarchy" and options["low_threshold"] > options["threshold"]:
        raise ValueError("low_threshold must be <= threshold")
    plan = Plan(prompt.shape[1], gen_length, block_length, steps, schedule, eps)
    return Config(prompt.long(), plan, record, options, mask_id, temperature, rank_dtype, alg_temp,
                  cfg_scale, eos_id, eos_penalty, pad_id)


# ---------------------------------------------------------------------- pure pieces
def num_transfer_tokens(masked: Tensor, steps: int) -> Tensor:
    """LLaDA's schedule: ``masked [batch]`` counts split evenly over ``steps`` rounds, the
    remainder going to the earliest rounds. Returns ``[batch, steps]`` long; ``batch * steps`` is
    at most :data:`MAX_LENGTH` (the table is allocated; :func:`decode` plans lazily instead)."""
    masked = _checks.tensor("masked", masked, convert=True, floating=False, dim=(0, 1))
    if masked.numel() and bool((masked < 0).any()):
        raise ValueError(f"masked counts must be >= 0; got {int(masked.min())}")
    steps = _checks.integer("steps", steps, 1, MAX_LENGTH)
    if max(masked.numel(), 1) * steps > MAX_LENGTH:
        raise ValueError(f"steps * batch must be <= {MAX_LENGTH}; got steps={steps}, batch={masked.numel()}")
    return even_split(masked, steps)


def predict(logits: Tensor, mask_id: int, temperature: float = 0.0,
            generator: Optional[torch.Generator] = None, start: int = 0,
            active: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """The token chosen at every position and ``softmax(logits)`` in float64.

    ``temperature = 0``: the argmax; otherwise the Gumbel-max sample
    ``argmax(logits / T + g)``, ``g`` standard Gumbel from ``generator`` (the sampler of LLaDA's
    ``add_gumbel_noise``, in float64). The mask id is never chosen. ``generator`` may be a list
    of one generator per row; ``start`` and ``active`` then say which draws each row makes
    (:func:`~diffkit.discrete.strategies.uniform`)."""
    logits = logits.to(torch.float64)
    probs = torch.softmax(logits, -1)
    z = logits.clone()
    if 0 <= mask_id < z.shape[-1]:
        z[..., mask_id] = -math.inf
    if temperature > 0:
        u = uniform(z.shape, generator, z.device, start, active, fill=0.5)
        u = u.clamp_min(torch.finfo(torch.float64).tiny)
        z = z / temperature - torch.log(-torch.log(u))
    return z.argmax(-1), probs


def scores(strategy: str, probs: Tensor, tokens: Tensor,
           generator: Optional[torch.Generator] = None) -> Tensor:
    """The per-position score a ranked strategy orders by (larger commits first): confidence
    ``p(token)``; margin ``p_(1) - p_(2)``; entropy ``-H(p)``; random: uniform noise."""
    _info(strategy)
    if strategy == "random":
        return torch.rand(tokens.shape, generator=generator, dtype=torch.float64, device=tokens.device)
    if strategy == "margin":
        return margin(probs)
    if strategy == "entropy":
        return neg_entropy(probs)
    return confidence(probs, tokens)


def _context(probs, tokens, **kw) -> RoundContext:
    logits = kw.pop("logits", None)
    if logits is None:
        logits = torch.log(probs.clamp_min(1e-300))
    remaining = kw.pop("remaining", None)
    return RoundContext(logits=logits, x=kw.pop("x", tokens), mask_id=kw.pop("mask_id", -1),
                        block=kw.pop("block", (0, tokens.shape[1])), remaining=remaining, **kw)


def select(strategy: str, probs: Tensor, tokens: Tensor, candidates: Tensor, budget: Tensor,
           *, threshold: Optional[float] = None, remaining: Optional[Tensor] = None,
           logits: Optional[Tensor] = None, progress: float = 0.0,
           generator: Optional[torch.Generator] = None, options: Optional[dict] = None) -> Tensor:
    """Which positions a strategy commits in one round: ``[batch, L]`` bool (the registered rule
    with its options validated; ``remaining`` defaults to ``candidates``)."""
    record = _info(strategy)
    opts = dict(options or {})
    if threshold is not None and any(o.name == "threshold" for o in record.options):
        opts.setdefault("threshold", threshold)
    opts = check_options(strategy, opts)
    ctx = _context(probs, tokens, logits=logits, remaining=candidates if remaining is None else remaining,
                   progress=progress, generator=generator)
    if record.logits_hook is not None:
        ctx.logits = record.logits_hook(ctx.logits, ctx, candidates, **opts)
        probs = torch.softmax(ctx.logits.to(torch.float64), -1)
    return record.rule(probs, tokens, candidates, torch.as_tensor(budget).reshape(-1), ctx, **opts) & (
        candidates if strategy != "prophet" else ctx.remaining)


# ---------------------------------------------------------------------- one round, shared
def _call(model: Callable, x: Tensor) -> Tensor:
    logits = model(x)
    if hasattr(logits, "logits") and not isinstance(logits, Tensor):
        logits = logits.logits
    if not isinstance(logits, Tensor) or logits.dim() != 3 or logits.shape[:2] != x.shape:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"model must return logits of shape [batch, length, vocab] = "
                         f"[{x.shape[0]}, {x.shape[1]}, V], got {shape}")
    return logits


def model_logits(model: Callable, x: Tensor, cfg: Config) -> Tensor:
    """One model call on ``x``; with ``cfg_scale = s > 0`` the same call also evaluates ``x``
    with the prompt masked (its left padding kept) and returns LLaDA's ``un + (s + 1)(cond - un)``."""
    if cfg.cfg_scale <= 0:
        return _call(model, x)
    un = x.clone()
    plen = cfg.plan.prompt_len
    pads = leading_pads(x[:, :plen], cfg.pad_id)  # left padding stays padding
    un[:, :plen] = torch.where(pads, x[:, :plen], torch.full_like(x[:, :plen], cfg.mask_id))
    both = _call(model, torch.cat([x, un], 0))
    cond, unc = both[: x.shape[0]], both[x.shape[0]:]
    s = cfg.cfg_scale
    if not cond.dtype.is_floating_point:
        cond, unc = cond.double(), unc.double()
    guided = unc + (s + 1) * (cond - unc)
    # an entry the conditional pass rules out (-inf) stays out; one only the unconditional pass
    # rules out keeps its conditional logit (the formula would give inf - inf there)
    guided = torch.where(torch.isneginf(unc), cond, guided)
    return torch.where(torch.isneginf(cond), cond, guided)


def round_logits(logits: Tensor, cfg: Config, ctx: Optional[RoundContext] = None,
                 masked: Optional[Tensor] = None) -> Tensor:
    """The logits a round decides on: the EOS penalty, then the strategy's logits hook
    (e.g. credit), which may keep per-block state in ``ctx.state``. Non-finite logits other than
    ``-inf`` are refused (a model returning NaN would decode garbage in silence)."""
    if torch.isnan(logits).any() or torch.isposinf(logits).any():
        raise ValueError("model returned NaN or +inf logits")
    if cfg.eos_id is not None and cfg.eos_penalty > 0:
        if cfg.eos_id >= logits.shape[-1]:
            raise ValueError(f"eos_id={cfg.eos_id} is outside the model's vocabulary ({logits.shape[-1]})")
        logits = logits.clone()
        logits[..., cfg.eos_id] = logits[..., cfg.eos_id] - cfg.eos_penalty
    hook = cfg.strategy.logits_hook
    if hook is not None and ctx is not None:
        logits = hook(logits, ctx, masked, **cfg.options)
    return logits


def rank_probs(logits: Tensor, cfg: Config) -> Tensor:
    """``softmax(logits)`` in the ranking dtype (float64, or the logits' own dtype)."""
    if cfg.rank_dtype == "logits":
        return torch.softmax(logits, -1)
    return torch.softmax(logits.to(torch.float64), -1)


def ensure_progress(commit: Tensor, candidates: Tensor, conf: Tensor) -> Tensor:
    """At least one commit in every row that has candidates: the most confident one is added
    where a rule chose none (every adaptive loop then ends within ``block_length`` rounds)."""
    empty = ~(commit & candidates).any(-1) & candidates.any(-1)
    if not empty.any():
        return commit
    best = topk_mask(torch.nan_to_num(conf.to(torch.float64), nan=-1.0), candidates,
                     torch.ones(commit.shape[0], dtype=torch.long, device=commit.device))
    return commit | (best & empty.unsqueeze(-1))


def leave_one_out(model: Callable, x: Tensor, drafts: Tensor, cfg: Config) -> tuple[Tensor, Tensor]:
    """The round's logits for ``x`` and, for every draft, the probability of its token with that
    position masked (everything else visible), from one call on a stacked batch (WINO's shadow
    block). Returns ``(logits [B, L, V], loo [B, L])`` (NaN where no draft)."""
    pairs = drafts.nonzero().tolist()
    copies = []
    for j, i in pairs:
        c = x[j].clone()
        c[i] = cfg.mask_id
        copies.append(c)
    stacked = torch.cat([x, torch.stack(copies)], 0) if copies else x
    logits = model_logits(model, stacked, cfg)
    loo = torch.full(x.shape, math.nan, dtype=torch.float64, device=x.device)
    if copies:
        p = torch.softmax(round_logits(logits[x.shape[0]:], cfg).to(torch.float64), -1)
        for n, (j, i) in enumerate(pairs):
            loo[j, i] = p[n, i, x[j, i]]
    return logits[: x.shape[0]], loo


# ---------------------------------------------------------------------- the front door
def decode(model: Callable[[Tensor], Tensor], prompt: Tensor, gen_length: int, mask_id: int,
           steps: Optional[int] = None, strategy: str = "confidence",
           block_length: Optional[int] = None, temperature: float = 0.0,
           threshold: Optional[float] = None, generator: Optional[torch.Generator] = None,
           *, schedule: str = "even", eps: float = 1e-3, alg_temp: Optional[float] = None,
           rank_dtype: str = "float64", cfg_scale: float = 0.0, eos_id: Optional[int] = None,
           eos_penalty: float = 0.0, pad_id: Optional[int] = None, **strategy_options) -> DecodeOutput:
    """Decode ``gen_length`` tokens after ``prompt`` ``[batch, P]`` (or ``[P]``) with a masked
    diffusion model ``logits = model(tokens)``. See the module docstring for the strategies, the
    planner, the reference semantics and the cache protocol.

    ``steps`` (default ``gen_length``): rounds in all, for the fixed-size strategies; a multiple
    of the number of blocks. ``threshold`` in ``(0, 1]``: the confidence threshold of
    ``threshold``, ``credit`` and ``hierarchy`` (default 0.9). ``schedule``: ``"even"`` or
    ``"dream"`` (with ``eps``); ``alg_temp``: Dream's position sampling for the ranked rules;
    ``rank_dtype``: ``"float64"`` or ``"logits"``; ``cfg_scale``: LLaDA's guidance;
    ``eos_id`` / ``eos_penalty``: the EOS logit lowered before the choice. ``pad_id``: the
    prompts are left-padded with it (default: the model's ``pad_id`` attribute, if any); the
    padding is prompt, exempt from the vocabulary check, and the model must treat it as absent
    (:mod:`diffkit.discrete.padding`; :class:`~diffkit.discrete.OracleModel`,
    :class:`~diffkit.discrete.KVCacheModel` and :class:`~diffkit.discrete.HFModel` take
    ``pad_id``). ``generator``: one :class:`torch.Generator`, or a list of one per row, which makes
    random decoding row-invariant too (row ``j`` draws from ``generator[j]`` what it draws alone).
    Strategy options
    (``factor``, ``gap``, ``reduce``, ``draft``, ``gamma``, ``alpha``, ``boost``, ``decay``,
    ``low_threshold``, ``eta``, ``wide``, ``narrow``, ``max_rounds``): see
    :func:`diffkit.discrete.strategies.info` for each strategy's own, with bounds and defaults.
    """
    if not callable(model) or isinstance(model, Tensor):
        raise TypeError(f"model must be callable (token ids -> logits); got {type(model).__name__}")
    per_row = isinstance(generator, (list, tuple))
    if per_row and not all(isinstance(g, torch.Generator) for g in generator):
        raise TypeError("generator must be a torch.Generator, a list of them (one per row) or None")
    if generator is not None and not per_row and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if pad_id is None and isinstance(getattr(model, "pad_id", None), int):
        pad_id = model.pad_id
    cfg = configure(prompt, gen_length, mask_id, steps, strategy, block_length, temperature,
                    threshold, schedule, eps, alg_temp, rank_dtype, cfg_scale, eos_id, eos_penalty,
                    strategy_options, pad_id)
    prompt = cfg.prompt
    if per_row and len(generator) != prompt.shape[0]:
        raise ValueError(f"generator: a list needs one generator per row ({prompt.shape[0]}), got {len(generator)}")
    vocab = getattr(model, "vocab_size", None)
    real = prompt[~leading_pads(prompt, cfg.pad_id)]
    if isinstance(vocab, int) and real.numel() and int(real.max()) >= vocab:
        raise ValueError(f"prompt token ids must be < the model's vocab_size {vocab}; got {int(real.max())}")
    batch, plen = prompt.shape
    x = torch.cat([prompt, torch.full((batch, cfg.plan.gen_length), cfg.mask_id, dtype=torch.long,
                                      device=prompt.device)], 1)
    record = cfg.strategy
    if hasattr(model, "begin_decode"):
        model.begin_decode(record.cacheable)
    if record.name == "draft-verify":
        return _draft_verify(model, x, cfg, int(cfg.options["draft"]))
    out = DecodeOutput(tokens=x, nfe=0)
    positions = torch.arange(x.shape[1], device=x.device)
    plan = cfg.plan
    cap = cfg.rounds_cap()
    for start, end in plan.blocks():
        in_block = (positions >= start) & (positions < end)
        if not (x[:, start:end] == cfg.mask_id).any():
            continue
        if record.cacheable and hasattr(model, "begin_block"):
            model.begin_block(x, start, end)
        m0 = (x[:, start:end] == cfg.mask_id).sum(1)
        state: dict = {}
        drafts = torch.zeros_like(x, dtype=torch.bool)
        r = 0
        while r < cap:
            masked = x == cfg.mask_id
            cand = masked & in_block
            if not cand.any() and not (record.remasks and record.fixed_schedule):
                break
            budget = torch.ones(batch, dtype=torch.long, device=x.device)
            if record.fixed_schedule and not record.remasks:
                r = plan.next_round(r, cand.sum(1), m0)
                if r >= cap:
                    break
                budget = plan.budget(r, cand.sum(1), m0)
            last = r == cap - 1
            if record.leave_one_out:
                raw, loo = leave_one_out(model, x, drafts, cfg)
                out.evaluations += batch + int(drafts.sum())
            else:
                raw, loo = model_logits(model, x, cfg), None
                out.evaluations += batch
            out.nfe += 1
            ctx = RoundContext(logits=raw, x=x, mask_id=cfg.mask_id, block=(start, end),
                               remaining=masked & (positions >= plen), round=r,
                               progress=r / cap, rounds=cap, generator=generator,
                               rank_dtype=cfg.rank_dtype, alg_temp=cfg.alg_temp, state=state,
                               drafts=drafts, loo=loo, last=last, gen_start=plen)
            logits = round_logits(raw, cfg, ctx, cand)
            ctx.logits = logits
            tokens, probs64 = predict(logits, cfg.mask_id, cfg.temperature, generator, plen,
                                      cand.any(-1))
            probs = probs64 if cfg.rank_dtype == "float64" else rank_probs(logits, cfg)
            conf = confidence(probs64, tokens)
            commit = record.rule(probs, tokens, cand, budget, ctx, **cfg.options)
            commit = commit & (ctx.remaining if record.name == "prophet" else cand)
            if not record.fixed_schedule:
                commit = ensure_progress(commit, cand, conf)
            revoked = None
            if record.remasks:
                revoked = record.revoke(probs, tokens, x, ctx, **cfg.options) & drafts & ~commit
                if not record.fixed_schedule:  # a row whose block is complete has finished it
                    revoked &= cand.any(-1, keepdim=True)
            out.history.append(Round((start, end), commit.clone(),
                                     torch.where(cand | commit, conf, torch.nan), revoked))
            x = torch.where(commit, tokens, x)
            if revoked is not None:
                x = torch.where(revoked, torch.full_like(x, cfg.mask_id), x)
                drafts = (drafts | commit) & ~revoked
                out.history[-1].after = x.clone()
            r += 1
    out.tokens = x
    return out


# ---------------------------------------------------------------------- draft and verify
def _greedy_choice(logits: Tensor, x: Tensor, mask_id: int, start: int, end: int) -> tuple[int, int, float]:
    """One-token-per-round confidence decoding's choice on one sequence ``x [L]``:
    (position, token, confidence), or (-1, -1, nan) when the block has no mask."""
    tokens, probs = predict(logits.unsqueeze(0), mask_id)
    cand = torch.zeros_like(x, dtype=torch.bool)
    cand[start:end] = x[start:end] == mask_id
    if not cand.any():
        return -1, -1, math.nan
    conf = confidence(probs, tokens)[0]
    pick = topk_mask(conf.unsqueeze(0), cand.unsqueeze(0), torch.ones(1, dtype=torch.long))[0]
    i = int(pick.nonzero()[0, 0])
    return i, int(tokens[0, i]), float(conf[i])


def _draft_order(logits: Tensor, x: Tensor, mask_id: int, start: int, end: int, k: int):
    tokens, probs = predict(logits.unsqueeze(0), mask_id)
    conf = confidence(probs, tokens)[0]
    cand = torch.zeros_like(x, dtype=torch.bool)
    cand[start:end] = x[start:end] == mask_id
    s = torch.where(cand, conf, torch.full_like(conf, -math.inf))
    order = torch.sort(s, descending=True, stable=True).indices[: min(k, int(cand.sum()))]
    return [(int(i), int(tokens[0, i]), float(conf[i])) for i in order]


def _draft_verify(model, x: Tensor, cfg: Config, draft: int) -> DecodeOutput:
    """Draft-and-verify, lossless against ``confidence`` with one token per round (temperature 0);
    see the module docstring."""
    plen, mask_id = cfg.plan.prompt_len, cfg.mask_id
    batch = x.shape[0]
    out = DecodeOutput(tokens=x, nfe=0)

    def logits_of(seqs: Tensor) -> Tensor:
        return round_logits(model_logits(model, seqs, cfg), cfg)

    first = logits_of(x)
    out.nfe, out.evaluations = 1, batch
    current = [first[r] for r in range(batch)]  # logits of each row's current sequence
    x = x.clone()
    for _ in range(cfg.plan.gen_length):  # each pass commits >= 1 token per unfinished row
        if not (x[:, plen:] == mask_id).any():
            break
        plans = []  # per row: (drafted states, drafted choices, block start, block end)
        for r in range(batch):
            masked_gen = (x[r, plen:] == mask_id).nonzero()
            if masked_gen.numel() == 0:
                plans.append(None)
                continue
            start, end = cfg.plan.block_of(plen + int(masked_gen[0, 0]))
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
            new_logits = logits_of(torch.stack([plans[r][0][j] for r, j in flat]))
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
                sb = cfg.plan.block_of(plen + int((s[plen:] == mask_id).nonzero()[0, 0]))
                g = _greedy_choice(new_logits[where[(r, j)]], s, mask_id, *sb)
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
