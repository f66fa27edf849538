"""Laws of completions and the information quantities of dLLM decoding, exactly.

- :func:`true_law`, :func:`total_variation`, :func:`kl_divergence`, :func:`entropy`,
  :func:`product_law`;
- :func:`total_correlation`: ``TC(x_S | visible) = sum_{i in S} H(x_i | visible) - H(x_S | visible)``
  (Watanabe 1960). Committing ``S`` in one round draws its tokens from the product of their
  marginals; ``KL(joint || product) = TC``, so TC is exactly the error a round can add (the
  "parallel decoding" gap of ParallelBench, Kang et al. 2025);
- :func:`bits_to_rounds`: the bits-to-rounds principle (Fu et al. 2025, "From bits to rounds",
  arXiv:2511.21103): when no round reveals more than ``B`` bits, a sample with ``NLL`` bits needs at
  least ``NLL / B`` rounds.

A law is ``(completions [K, G], probs [K])``, a dict ``{tuple: probability}`` or an
:class:`~diffkit.discrete.walk.ExactLaw`.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from .. import _checks

__all__ = ["true_law", "total_variation", "kl_divergence", "entropy", "product_law",
           "total_correlation", "bits_to_rounds", "as_dict", "LN2"]

LN2 = math.log(2.0)


def as_dict(law, name: str = "law") -> dict:
    """A law as ``{completion tuple: probability}`` (zero-probability entries dropped); ``name``
    is the argument named when ``law`` is none of the accepted forms."""
    if isinstance(law, dict):
        return law
    if hasattr(law, "completions") and hasattr(law, "probs"):
        comps, probs = law.completions, law.probs
    elif isinstance(law, (tuple, list)) and len(law) == 2:
        comps, probs = law
    else:
        raise TypeError(f"{name} must be a law: (completions, probs), a dict or an ExactLaw; got "
                        f"{type(law).__name__}")
    return {tuple(c.tolist()): float(p) for c, p in zip(comps, probs) if p > 0}


def true_law(oracle, prompt, gen_length: int) -> tuple[Tensor, Tensor]:
    """The language's true law of the completion: ``(completions [K, G], probs [K])``."""
    prompt = torch.as_tensor(prompt, dtype=torch.long).reshape(-1)
    return oracle.completion_law(prompt, gen_length)


def total_variation(p, q) -> float:
    """``TV(p, q) = 1/2 sum |p - q|`` for laws given as ``(completions, probs)``, dicts or
    :class:`ExactLaw`."""
    p, q = as_dict(p, "p"), as_dict(q, "q")
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def kl_divergence(p, q) -> float:
    """``KL(p || q)`` in nats (``inf`` when ``p`` puts mass where ``q`` has none)."""
    p, q = as_dict(p, "p"), as_dict(q, "q")
    out = 0.0
    for k, pk in p.items():
        qk = q.get(k, 0.0)
        if qk <= 0:
            return math.inf
        out += pk * (math.log(pk) - math.log(qk))
    return out


def entropy(p) -> float:
    """Shannon entropy in nats."""
    return -sum(v * math.log(v) for v in as_dict(p, "p").values() if v > 0)


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
    round reveals more than ``budget`` bits. A ``budget_bits`` of 0 is accepted only with no
    information to reveal (0 rounds)."""
    information_bits = _checks.real("information_bits", information_bits, 0.0)
    budget_bits = _checks.real("budget_bits", budget_bits, 0.0)
    if budget_bits == 0:
        if information_bits > 0:
            raise ValueError(f"budget_bits must be > 0 when information_bits > 0 (no number of rounds "
                             f"reveals {information_bits:g} bits); got 0")
        return 0.0
    return information_bits / budget_bits
