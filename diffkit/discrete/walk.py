"""The exact law of a decoder's output, by walking its decoding tree.

For a short generation the process run by :func:`diffkit.discrete.decode` is a finite tree:
each round's branch is the committed set (and, for remasking rules, the set taken back) and the
tokens drawn there; its probability follows from the model's logits (a point mass at
``temperature = 0``, ``softmax(logits / T)`` per position otherwise) and from the rule's own
randomness (``random``'s uniform subsets, Dream's ``alg_temp`` draw without replacement,
ReMDM's independent unmasking and remasking). The walk runs the *same* round code as
:func:`decode` (:func:`~diffkit.discrete.decode.configure`, the planner,
:func:`~diffkit.discrete.decode.model_logits`, :func:`~diffkit.discrete.decode.round_logits`,
the registered rule) with the draws enumerated instead of sampled, memoised on the state
(sequence, block, round, drafts, per-block rule state). Remasking chains are finite too: their
rounds are bounded (``remdm`` by ``steps``, ``wino`` by ``max_rounds``), so the state space of a
short sequence is small and the law exact.

The walk also records, per round, the expected total correlation of the committed set given the
visible tokens and the information the round reveals (``sum_{i in S} -log p(x_i | visible)``
under the model's conditionals), which lesson 12 sets against the bits-to-rounds bound.

An oracle is an object with ``vocab_size``, ``completion_law(prompt, gen_length)`` and
``as_model(mask_id)``: :class:`~diffkit.discrete.HMMLanguage` and :class:`~diffkit.discrete.Task`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor

from .. import _checks
from .decode import (
    configure,
    ensure_progress,
    leave_one_out,
    model_logits,
    predict,
    rank_probs,
    round_logits,
)
from .laws import as_dict, total_correlation, true_law
from .strategies import RoundContext, confidence, prophet_go

__all__ = ["ExactLaw", "MemoModel", "output_law", "MAX_WALK_STATES"]

#: the largest ``max_states`` accepted by :func:`output_law` (each state holds a node in memory)
MAX_WALK_STATES = 10**7


class MemoModel:
    """A deterministic model with its answers remembered by input.

    Exact enumeration (:func:`output_law`) visits the same decoding states again and again, across
    the branches of one tree and across strategies; for an oracle the forward-backward pass is the
    costly part, so each distinct input is computed once. Returns a fresh copy of the remembered
    logits, so a caller may change them in place. At most ``max_entries`` inputs are kept (the
    memory is cleared when full).
    """

    def __init__(self, model, max_entries: int = 200_000):
        self.model, self.max_entries, self._seen = model, int(max_entries), {}
        self.mask_id = getattr(model, "mask_id", None)
        self.calls = 0

    def __call__(self, tokens: Tensor) -> Tensor:
        key = (tuple(tokens.shape), tuple(tokens.reshape(-1).tolist()))
        if key not in self._seen:
            if len(self._seen) >= self.max_entries:
                self._seen.clear()
            self.calls += 1
            self._seen[key] = self.model(tokens)
        return self._seen[key].clone()


@dataclass
class ExactLaw:
    """The exact law of a decoder's output for one prompt.

    ``completions [K, G]`` and ``probs [K]``: the law of the generated tokens; ``rounds_law``:
    ``{rounds: probability}``; ``expected_rounds``; ``total_correlation[r]``: the expected TC (nats)
    of the ``r``-th round's committed set given the tokens visible before it (0 where there is no
    ``r``-th round), averaged over the law; ``information``: expected total information the rounds
    reveal (nats); ``max_round_information``: the largest information a reachable round reveals
    (nats); ``states``: decoding states visited."""

    completions: Tensor
    probs: Tensor
    rounds_law: dict
    expected_rounds: float
    total_correlation: list
    information: float
    max_round_information: float
    states: int = 0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return as_dict(self)

    @property
    def total_correlation_sum(self) -> float:
        return float(sum(self.total_correlation))


@dataclass
class _Node:
    law: dict
    rounds: dict
    tc: list
    info: float
    max_info: float


def _token_branches(q: Tensor, positions: list[int]):
    """Every assignment of tokens to ``positions`` with its probability under independent
    per-position laws ``q [L, V]``."""
    supports = [[(int(v), float(q[i, v])) for v in torch.nonzero(q[i] > 0).flatten()] for i in positions]
    for combo in itertools.product(*supports):
        w = 1.0
        for _, p in combo:
            w *= p
        yield tuple(v for v, _ in combo), w


class _single_thread:
    """Run tiny-tensor work on one intra-op thread (on a busy machine, thread start-up dominates
    operations on tensors of a few dozen entries); restores the previous setting."""

    def __enter__(self):
        self.n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.n)


def _state_key(state: dict) -> tuple:
    return tuple((k, tuple(v.reshape(-1).tolist())) for k, v in sorted(state.items()))


def output_law(oracle, prompt, gen_length: int, strategy: str = "confidence",
               steps: Optional[int] = None, block_length: Optional[int] = None,
               temperature: float = 0.0, threshold: Optional[float] = None,
               mask_id: Optional[int] = None, model=None, max_states: int = 200_000,
               *, schedule: str = "even", eps: float = 1e-3, alg_temp: Optional[float] = None,
               rank_dtype: str = "float64", cfg_scale: float = 0.0, eos_id: Optional[int] = None,
               eos_penalty: float = 0.0, **strategy_options) -> ExactLaw:
    """The exact law of ``decode(model, prompt, gen_length, ...)``'s completion, by walking the
    decoding tree (see the module docstring). ``model`` defaults to ``oracle.as_model(mask_id)``;
    the arguments are those of :func:`~diffkit.discrete.decode`. ``draft-verify`` is evaluated as
    what it provably equals: ``confidence`` with one token per round at temperature 0.

    Cost grows like ``V ** (masked positions of a block)`` per state for rules whose committed
    set depends on the sampled tokens at ``temperature > 0``, and like ``2 ** (positions)`` for
    ReMDM's independent draws; keep ``gen_length * log(V)`` small (e.g. ``V = 3``, ``G <= 6``).
    """
    mask_id = oracle.vocab_size if mask_id is None else mask_id
    max_states = _checks.integer("max_states", max_states, 1, MAX_WALK_STATES)
    prompt_t = torch.as_tensor(prompt, dtype=torch.long).reshape(1, -1)
    kw = dict(schedule=schedule, eps=eps, alg_temp=alg_temp, rank_dtype=rank_dtype,
              cfg_scale=cfg_scale, eos_id=eos_id, eos_penalty=eos_penalty)
    cfg = configure(prompt_t, gen_length, mask_id, steps, strategy, block_length, temperature,
                    threshold, options=strategy_options, **kw)
    if cfg.strategy.name == "draft-verify":
        cfg = configure(prompt_t, gen_length, mask_id, gen_length, "confidence", block_length,
                        0.0, None, **kw)
    mask_id = cfg.mask_id
    record, plan = cfg.strategy, cfg.plan
    model = oracle.as_model(mask_id) if model is None else model
    comps, p_true = true_law(oracle, prompt_t[0], gen_length)
    plen = plan.prompt_len
    length = plen + gen_length
    blocks = plan.blocks()
    cap = cfg.rounds_cap()
    positions = torch.arange(length)
    uses_round = record.fixed_schedule or record.remasks or record.name == "wino"
    memo: dict = {}
    logit_cache: dict = {}

    def tc_of(x: Tensor, committed: list[int]) -> float:
        vis = x[plen:].clone()
        vis[vis == mask_id] = -1
        return total_correlation(comps, p_true, vis, [i - plen for i in committed])

    def leaf(xt) -> _Node:
        return _Node({xt[plen:]: 1.0}, {0: 1.0}, [], 0.0, 0.0)

    def visit(xt: tuple, b: int, r: int, drafts: tuple, state: dict) -> _Node:
        # advance to the next block / round that does something, as decode's loops do
        while True:
            if b >= len(blocks):
                return leaf(xt)
            start, end = blocks[b]
            masks_in_block = mask_id in xt[start:end]
            if record.remasks and record.fixed_schedule:
                if r < cap:
                    break
            elif masks_in_block and r < cap:
                if record.fixed_schedule:
                    m0 = torch.tensor([end - start])
                    now = torch.tensor([xt[start:end].count(mask_id)])
                    r = plan.next_round(r, now, m0)
                    if r < cap:
                        break
                else:
                    break
            b, r, drafts, state = b + 1, 0, (), {}
        key = (xt, b, r if uses_round else 0, drafts, _state_key(state))
        if key in memo:
            return memo[key]
        if len(memo) > max_states:
            raise ValueError(f"more than max_states={max_states} decoding states; shorten the "
                             "generation or raise max_states")
        x = torch.tensor(xt, dtype=torch.long)
        draft_mask = torch.zeros(length, dtype=torch.bool)
        if drafts:
            draft_mask[list(drafts)] = True
        masked = x == mask_id
        cand = masked & (positions >= start) & (positions < end)
        remaining = masked & (positions >= plen)
        ck = (xt, drafts if record.leave_one_out else ())
        if ck not in logit_cache:
            if record.leave_one_out:
                raw, loo = leave_one_out(model, x.unsqueeze(0), draft_mask.unsqueeze(0), cfg)
            else:
                raw, loo = model_logits(model, x.unsqueeze(0), cfg), None
            logit_cache[ck] = (raw, loo)
        raw, loo = logit_cache[ck]
        budget = torch.ones(1, dtype=torch.long)
        if record.fixed_schedule and not record.remasks:
            budget = plan.budget(r, cand.sum().reshape(1), torch.tensor([end - start]))
        ctx = RoundContext(logits=raw, x=x.unsqueeze(0), mask_id=mask_id, block=(start, end),
                           remaining=remaining.unsqueeze(0), round=r, progress=r / cap, rounds=cap,
                           rank_dtype=cfg.rank_dtype, alg_temp=cfg.alg_temp, state=dict(state),
                           drafts=draft_mask.unsqueeze(0), loo=loo, last=r == cap - 1)
        logits = round_logits(raw, cfg, ctx, cand.unsqueeze(0))
        ctx.logits = logits
        child_state = ctx.state
        tokens0, probs64 = predict(logits, mask_id)
        probs = probs64 if cfg.rank_dtype == "float64" else rank_probs(logits, cfg)
        if cfg.temperature == 0:
            q = torch.nn.functional.one_hot(tokens0[0], probs64.shape[-1]).to(torch.float64)
        else:
            z = logits[0].to(torch.float64) / cfg.temperature
            if 0 <= mask_id < z.shape[-1]:
                z[..., mask_id] = -math.inf
            q = torch.softmax(z, -1)
        cand1 = cand.unsqueeze(0)
        branches: dict = {}  # (committed positions, tokens, revoked positions) -> probability

        def add(pos: tuple, toks: tuple, rev: tuple, w: float):
            if w > 0:
                branches[(pos, toks, rev)] = branches.get((pos, toks, rev), 0.0) + w

        def sets_for(tokens: Tensor) -> list:
            """The law of the committed set given the round's tokens."""
            if record.name == "prophet":
                if bool(prophet_go(logits, ctx.remaining, ctx.progress, cfg.options["gap"],
                                   cfg.options["reduce"])[0]):
                    return [(ctx.remaining.clone(), 1.0)]
            if record.branches is not None:
                law = record.branches(probs, tokens, cand1, budget, ctx, **cfg.options)
            else:
                law = [(record.rule(probs, tokens, cand1, budget, ctx, **cfg.options), 1.0)]
            if not record.fixed_schedule:
                conf = confidence(probs64, tokens)
                law = [(ensure_progress(m & cand1, cand1, conf), w) for m, w in law]
            return law

        def revokes_for(commit: Tensor, tokens: Tensor) -> list:
            if not record.remasks:
                return [((), 1.0)]
            if record.revoke_branches is not None:
                law = record.revoke_branches(probs, tokens, ctx.x, ctx, **cfg.options)
            else:
                law = [(record.revoke(probs, tokens, ctx.x, ctx, **cfg.options), 1.0)]
            out = []
            for m, w in law:
                m = m & ctx.drafts & ~commit
                out.append((tuple(m[0].nonzero().flatten().tolist()), w))
            return out

        set_independent = record.walk == "set" or cfg.temperature == 0
        if record.name == "prophet" and bool(prophet_go(logits, ctx.remaining, ctx.progress,
                                                         cfg.options["gap"], cfg.options["reduce"])[0]):
            set_independent = True
        if set_independent:
            for m, w_set in sets_for(tokens0):
                pos = m[0].nonzero().flatten().tolist()
                for rev, w_rev in revokes_for(m, tokens0):
                    for toks, w in _token_branches(q, pos):
                        add(tuple(pos), toks, rev, w_set * w_rev * w)
        else:
            cand_pos = cand.nonzero().flatten().tolist()
            combos = list(_token_branches(q, cand_pos))
            toks_all = tokens0.expand(len(combos), -1).clone()
            toks_all[:, cand_pos] = torch.tensor([c for c, _ in combos], dtype=torch.long).reshape(
                len(combos), -1)
            if record.random or cfg.alg_temp:  # the rule's own draw: its law, combination by combination
                set_laws = [sets_for(toks_all[i: i + 1]) for i in range(len(combos))]
            else:  # one batched call of the deterministic rule over every joint draw
                n = len(combos)
                c_n = cand1.expand(n, -1)
                sel = record.rule(probs.expand(n, -1, -1), toks_all, c_n, budget.expand(n), ctx,
                                  **cfg.options)
                sel = sel & (ctx.remaining if record.name == "prophet" else c_n)
                if not record.fixed_schedule:
                    sel = ensure_progress(sel, c_n, confidence(probs64.expand(n, -1, -1), toks_all))
                set_laws = [[(sel[i: i + 1], 1.0)] for i in range(n)]
            for i, (_, w_tok) in enumerate(combos):
                row = toks_all[i: i + 1]
                for m, w_set in set_laws[i]:
                    pos = m[0].nonzero().flatten().tolist()
                    for rev, w_rev in revokes_for(m, row):
                        add(tuple(pos), tuple(row[0, pos].tolist()), rev, w_tok * w_set * w_rev)

        law: dict = {}
        rounds: dict = {}
        tc_here = 0.0
        tails: list = []
        info = 0.0
        max_info = 0.0
        tc_cache: dict = {}
        logp = torch.log_softmax(raw[0].to(torch.float64), -1).tolist()
        for (pos, toks, rev), w in branches.items():
            child_l = list(xt)
            for p_, t_ in zip(pos, toks):
                child_l[p_] = t_
            for p_ in rev:
                child_l[p_] = mask_id
            new_drafts = tuple(sorted((set(drafts) | set(pos)) - set(rev))) if record.remasks else ()
            child = visit(tuple(child_l), b, r + 1, new_drafts, child_state)
            for k_, v_ in child.law.items():
                law[k_] = law.get(k_, 0.0) + w * v_
            for k_, v_ in child.rounds.items():
                rounds[k_ + 1] = rounds.get(k_ + 1, 0.0) + w * v_
            if pos not in tc_cache:
                tc_cache[pos] = tc_of(x, list(pos))
            tc_here += w * tc_cache[pos]
            while len(tails) < len(child.tc):
                tails.append(0.0)
            for j, t in enumerate(child.tc):
                tails[j] += w * t
            i_round = -sum(logp[p_][t_] for p_, t_ in zip(pos, toks))
            info += w * (i_round + child.info)
            max_info = max(max_info, i_round, child.max_info)
        node = _Node(law, rounds, [tc_here] + tails, info, max_info)
        memo[key] = node
        return node

    x0 = torch.cat([prompt_t[0], torch.full((gen_length,), mask_id, dtype=torch.long)])
    with _single_thread():
        root = visit(tuple(x0.tolist()), 0, 0, (), {})
    keys = sorted(root.law)
    completions = torch.tensor(keys, dtype=torch.long).reshape(len(keys), gen_length)
    probs = torch.tensor([root.law[k] for k in keys], dtype=torch.float64)
    return ExactLaw(completions, probs, dict(sorted(root.rounds.items())),
                    sum(k * v for k, v in root.rounds.items()), root.tc, root.info, root.max_info,
                    states=len(memo))
