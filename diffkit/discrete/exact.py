"""Exact evaluation of dLLM decoding against an oracle: the whole law of a decoder's output.

For a short generation the decoding process of :func:`diffkit.discrete.decode` is a finite tree:
each round's branch is the committed set and the tokens drawn there, and its probability follows
from the model's logits (a point mass at ``temperature = 0``, ``softmax(logits / T)`` per position
otherwise; the ``random`` strategy branches uniformly over the subsets of the round's size). This
module walks that tree (memoised on the state) and returns the exact law of the output, so a
strategy's error against the language's true law is a number, not an estimate:

- :func:`output_law` -> :class:`ExactLaw`: the law of the completion, the law of the number of
  rounds, the expected total correlation of each round's committed set, and the information that
  the rounds reveal;
- :func:`true_law`, :func:`total_variation`, :func:`kl_divergence`, :func:`entropy`;
- :func:`total_correlation`: ``TC(x_S | visible) = sum_{i in S} H(x_i | visible) - H(x_S | visible)``
  (Watanabe 1960). Committing ``S`` in one round draws its tokens from the product of their
  marginals; ``KL(joint || product) = TC``, so TC is exactly the error a round can add (the
  "parallel decoding" gap of ParallelBench, Kang et al. 2025);
- :func:`bits_to_rounds`: the bits-to-rounds principle (Fu et al. 2025, "From bits to rounds",
  arXiv:2511.21103): when no round reveals more than ``B`` bits, a sample with ``NLL`` bits needs at
  least ``NLL / B`` rounds. We take the information of a round to be ``sum_{i in S} -log2 p(x_i |
  visible)`` of its committed tokens under the model's conditionals (our reading of the paper's
  per-round budget); for exact one-token-per-round decoding these sum to the sample's NLL exactly;
- :func:`monte_carlo`: estimates for generations too long to enumerate.

An oracle is an object with ``vocab_size``, ``completion_law(prompt, gen_length)`` and
``as_model(mask_id)``: :class:`~diffkit.discrete.HMMLanguage` and :class:`~diffkit.discrete.Task`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch
from torch import Tensor

from .decode import (
    FIXED_SCHEDULE,
    STRATEGIES,
    _call,
    _check,
    decode,
    num_transfer_tokens,
    predict,
    prophet_go,
    select,
)

__all__ = ["ExactLaw", "MemoModel", "output_law", "true_law", "total_variation", "kl_divergence",
           "entropy", "total_correlation", "bits_to_rounds", "monte_carlo", "MonteCarlo",
           "product_law", "strategy_grid", "pareto_points", "pareto_front"]

LN2 = math.log(2.0)


# ---------------------------------------------------------------------- laws as (support, probs)
def _as_dict(law) -> dict:
    if isinstance(law, dict):
        return law
    if isinstance(law, ExactLaw):
        comps, probs = law.completions, law.probs
    else:
        comps, probs = law
    return {tuple(c.tolist()): float(p) for c, p in zip(comps, probs) if p > 0}


def true_law(oracle, prompt, gen_length: int) -> tuple[Tensor, Tensor]:
    """The language's true law of the completion: ``(completions [K, G], probs [K])``."""
    prompt = torch.as_tensor(prompt, dtype=torch.long).reshape(-1)
    return oracle.completion_law(prompt, gen_length)


def total_variation(p, q) -> float:
    """``TV(p, q) = 1/2 sum |p - q|`` for laws given as ``(completions, probs)``, dicts or
    :class:`ExactLaw`."""
    p, q = _as_dict(p), _as_dict(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def kl_divergence(p, q) -> float:
    """``KL(p || q)`` in nats (``inf`` when ``p`` puts mass where ``q`` has none)."""
    p, q = _as_dict(p), _as_dict(q)
    out = 0.0
    for k, pk in p.items():
        qk = q.get(k, 0.0)
        if qk <= 0:
            return math.inf
        out += pk * (math.log(pk) - math.log(qk))
    return out


def entropy(p) -> float:
    """Shannon entropy in nats."""
    return -sum(v * math.log(v) for v in _as_dict(p).values() if v > 0)


def product_law(marginals: Tensor) -> tuple[Tensor, Tensor]:
    """The product of per-position laws ``marginals [G, V]``: ``(completions, probs)``, the law of
    committing all ``G`` positions in one round."""
    g, v = marginals.shape
    comps = torch.tensor(list(itertools.product(range(v), repeat=g)), dtype=torch.long).reshape(-1, g)
    probs = marginals[torch.arange(g), comps].prod(-1) if g else torch.ones(1, dtype=torch.float64)
    return comps, probs


def _group_entropy(cols: Tensor, w: Tensor) -> float:
    """Entropy (nats) of the law of the rows of ``cols`` weighted by ``w`` (summing equal rows)."""
    if cols.shape[1] == 0:
        return 0.0
    base = int(cols.max()) + 1
    codes = (cols * base ** torch.arange(cols.shape[1], dtype=torch.long)).sum(1)
    _, inv = torch.unique(codes, return_inverse=True)
    mass = torch.zeros(int(inv.max()) + 1, dtype=torch.float64).index_add_(0, inv, w)
    mass = mass[mass > 0]
    return float(-(mass * torch.log(mass)).sum())


def total_correlation(completions: Tensor, probs: Tensor, visible: Tensor, positions) -> float:
    """Exact ``TC(x_S | visible)`` in nats: ``sum_{i in S} H(x_i | v) - H(x_S | v)`` under the law
    ``(completions [K, G], probs [K])``; ``visible [G]`` holds the visible tokens (``-1`` where
    masked), ``positions`` the set ``S`` (indices into ``G``). 0 when no completion is consistent."""
    positions = list(positions)
    if len(positions) < 2:
        return 0.0
    vis = visible >= 0
    ok = ((completions == visible) | ~vis).all(-1)
    w = probs * ok
    if w.sum() <= 0:
        return 0.0
    w = w / w.sum()
    cols = completions[:, positions]
    marg = sum(_group_entropy(cols[:, j: j + 1], w) for j in range(len(positions)))
    return max(marg - _group_entropy(cols, w), 0.0)


def bits_to_rounds(information_bits: float, budget_bits: float) -> float:
    """The bits-to-rounds lower bound (Fu et al. 2025): rounds ``>= information / budget`` when no
    round reveals more than ``budget`` bits."""
    if budget_bits <= 0:
        return math.inf if information_bits > 0 else 0.0
    return information_bits / budget_bits


# ---------------------------------------------------------------------- the decoding tree
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
    reveal (nats, see the module docstring); ``max_round_information``: the largest information a
    reachable round reveals (nats); ``states``: decoding states visited."""

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
        return _as_dict(self)

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


def output_law(oracle, prompt, gen_length: int, strategy: str = "confidence",
               steps: Optional[int] = None, block_length: Optional[int] = None,
               temperature: float = 0.0, threshold: Optional[float] = None,
               mask_id: Optional[int] = None, model=None, max_states: int = 200_000,
               **strategy_options) -> ExactLaw:
    """The exact law of ``decode(model, prompt, gen_length, ...)``'s completion, by walking the
    decoding tree (see the module docstring). ``model`` defaults to ``oracle.as_model(mask_id)``;
    the arguments are those of :func:`~diffkit.discrete.decode`. ``draft-verify`` is evaluated as
    what it provably equals: ``confidence`` with one token per round at temperature 0.

    Cost grows like ``V ** (masked positions of a block)`` per state for ``confidence``,
    ``threshold`` and ``factor`` at ``temperature > 0`` (the committed set depends on every sampled
    token); keep ``gen_length * log(V)`` small (e.g. ``V = 3``, ``G <= 8``).
    """
    mask_id = oracle.vocab_size if mask_id is None else int(mask_id)
    prompt_t = torch.as_tensor(prompt, dtype=torch.long).reshape(1, -1)
    prompt_t, block_length, steps = _check(prompt_t, gen_length, mask_id, steps, strategy,
                                           block_length, temperature, threshold, strategy_options)
    if strategy == "draft-verify":
        strategy, steps, strategy_options = "confidence", gen_length, {}
    model = oracle.as_model(mask_id) if model is None else model
    comps, p_true = true_law(oracle, prompt_t[0], gen_length)
    plen = prompt_t.shape[1]
    length = plen + gen_length
    num_blocks = gen_length // block_length
    per_block = steps // num_blocks
    schedule = num_transfer_tokens(torch.tensor([block_length]), per_block)[0].tolist()
    positions = torch.arange(length)
    memo: dict = {}
    logit_cache: dict = {}

    def tc_of(x: Tensor, committed: list[int]) -> float:
        vis = x[plen:].clone()
        vis[vis == mask_id] = -1
        return total_correlation(comps, p_true, vis, [i - plen for i in committed])

    def visit(xt: tuple, r: int) -> _Node:
        key = (xt, r)
        if key in memo:
            return memo[key]
        if len(memo) > max_states:
            raise ValueError(f"more than max_states={max_states} decoding states; shorten the "
                             "generation or raise max_states")
        if mask_id not in xt[plen:]:
            node = _Node({xt[plen:]: 1.0}, {0: 1.0}, [], 0.0, 0.0)
            memo[key] = node
            return node
        x = torch.tensor(xt, dtype=torch.long)
        b = xt[plen:].index(mask_id) // block_length
        start, end = plen + b * block_length, plen + (b + 1) * block_length
        budget = 1
        if strategy in FIXED_SCHEDULE:
            while r < per_block and schedule[r] == 0:
                r += 1
            budget = schedule[r]
        if xt not in logit_cache:  # the same sequence may be reached at different rounds
            logit_cache[xt] = _call(model, x.unsqueeze(0)).to(torch.float64)
        logits = logit_cache[xt]
        tokens0, probs = predict(logits, mask_id)  # greedy tokens and softmax(logits)
        masked = x == mask_id
        cand = masked & (positions >= start) & (positions < end)
        remaining = masked & (positions >= plen)
        if temperature == 0:
            q = torch.nn.functional.one_hot(tokens0[0], probs.shape[-1]).to(torch.float64)
        else:
            z = logits[0] / temperature
            if 0 <= mask_id < z.shape[-1]:
                z[..., mask_id] = -math.inf
            q = torch.softmax(z, -1)
        bud = torch.tensor([budget])
        branches: dict = {}  # (committed positions, tokens) -> probability

        def add(pos: tuple, toks: tuple, w: float):
            if w > 0:
                branches[(pos, toks)] = branches.get((pos, toks), 0.0) + w

        def commit_fixed_set(pos: list[int], w_set: float):
            for toks, w in _token_branches(q, pos):
                add(tuple(pos), toks, w_set * w)

        kw = dict(threshold=threshold, remaining=remaining.unsqueeze(0), logits=logits,
                  progress=r / per_block if strategy in FIXED_SCHEDULE else 0.0,
                  options=strategy_options)
        cand_pos = cand.nonzero().flatten().tolist()
        if strategy == "random":
            k = min(budget, len(cand_pos))
            subsets = list(itertools.combinations(cand_pos, k))
            for s in subsets:
                commit_fixed_set(list(s), 1.0 / len(subsets))
        elif strategy in ("margin", "entropy") or (strategy == "prophet" and bool(prophet_go(
                logits, remaining.unsqueeze(0), kw["progress"], strategy_options)[0])):
            # the committed set does not depend on the sampled tokens
            s = select(strategy, probs, tokens0, cand.unsqueeze(0), bud, **kw)[0]
            commit_fixed_set(s.nonzero().flatten().tolist(), 1.0)
        else:
            # confidence / threshold / factor (and prophet's fallback): the set depends on every
            # sampled token through its confidence, so enumerate the joint draw over candidates
            name = "confidence" if strategy == "prophet" else strategy
            combos = list(_token_branches(q, cand_pos))
            toks = tokens0.expand(len(combos), -1).clone()
            toks[:, cand_pos] = torch.tensor([c for c, _ in combos], dtype=torch.long).reshape(len(combos), -1)
            sel = select(name, probs.expand(len(combos), -1, -1), toks, cand.expand(len(combos), -1),
                         bud.expand(len(combos)), **{**kw, "remaining": remaining.expand(len(combos), -1)})
            for row, (_, w) in enumerate(combos):
                pos = sel[row].nonzero().flatten().tolist()
                add(tuple(pos), tuple(toks[row, pos].tolist()), w)

        law: dict = {}
        rounds: dict = {}
        tc_here = 0.0
        tails: list = []
        info = 0.0
        max_info = 0.0
        tc_cache: dict = {}
        logp = torch.log(probs[0]).tolist()
        for (pos, toks), w in branches.items():
            child_l = list(xt)
            for p_, t_ in zip(pos, toks):
                child_l[p_] = t_
            still = mask_id in child_l[start:end]
            child = visit(tuple(child_l), (r + 1) if (still and strategy in FIXED_SCHEDULE) else 0)
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
        root = visit(tuple(x0.tolist()), 0)
    keys = sorted(root.law)
    completions = torch.tensor(keys, dtype=torch.long).reshape(len(keys), gen_length)
    probs = torch.tensor([root.law[k] for k in keys], dtype=torch.float64)
    return ExactLaw(completions, probs, dict(sorted(root.rounds.items())),
                    sum(k * v for k, v in root.rounds.items()), root.tc, root.info, root.max_info,
                    states=len(memo))


# ---------------------------------------------------------------------- Monte Carlo
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
    mask_id = oracle.vocab_size if mask_id is None else int(mask_id)
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


# ---------------------------------------------------------------------- error against rounds
def strategy_grid(gen_length: int, block_length: Optional[int] = None,
                  temperature: float = 0.0,
                  strategies: Optional[Sequence[str]] = None) -> list[tuple[str, dict]]:
    """The knob settings behind a Pareto plot: every fixed-schedule strategy at every ``steps``
    that divides ``gen_length`` and is a multiple of the number of blocks; ``threshold`` at
    0.5 / 0.7 / 0.9; ``factor`` at 0.5 / 1 / 2; ``draft-verify`` (temperature 0 only)."""
    block_length = gen_length if block_length is None else int(block_length)
    blocks = gen_length // block_length
    steps = [s for s in range(1, gen_length + 1) if gen_length % s == 0 and s % blocks == 0]
    out: list[tuple[str, dict]] = []
    for name in strategies or STRATEGIES:
        if name in FIXED_SCHEDULE:
            out += [(name, {"steps": s}) for s in steps]
        elif name == "threshold":
            out += [(name, {"threshold": th}) for th in (0.5, 0.7, 0.9)]
        elif name == "factor":
            out += [(name, {"factor": f}) for f in (0.5, 1.0, 2.0)]
        elif name == "draft-verify" and temperature == 0:
            out.append((name, {}))
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
        if name == "draft-verify":  # same law as one-token confidence, fewer model calls
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
