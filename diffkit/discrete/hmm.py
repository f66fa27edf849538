"""The exact oracle language: a hidden Markov model with exact conditionals.

A sequence ``x_1 .. x_L`` is emitted by a hidden chain ``s_1 .. s_L``:
``p(x, s) = initial[s_1] emission[s_1, x_1] prod_i transition[s_{i-1}, s_i] emission[s_i, x_i]``
(Rabiner 1989, "A tutorial on hidden Markov models", Sec. III). Everything a diffusion language
model is asked to learn is closed form here:

- ``log_prob(tokens)``: the exact log-likelihood by the forward algorithm (Rabiner eq. 19-21);
  with ``mask_id`` the masked positions are summed out, giving ``log p(visible tokens)``.
- ``marginals(tokens, mask_id)``: ``p(x_i | visible tokens)`` for every masked position by
  forward-backward (Rabiner eq. 27, with the per-step scaling of Sec. V.A), in float64. This is
  exactly the clean-data posterior that a masked-diffusion network predicts (Ou et al. 2024).
- ``as_model(mask_id)``: the oracle as a callable ``logits = model(tokens)``, so it plugs into
  :func:`diffkit.discrete.decode` like a network.

Vocabulary convention (used by every part of :mod:`diffkit.discrete`): ``0 .. V-1`` are the real
tokens; the mask is an extra id, by default ``mask_id = V``. A model's logits have one entry per
id up to and including the mask, ``[..., max(V, mask_id + 1)]``; the entries of ids that are not
real tokens (the mask among them) are ``-inf``: like a real dLLM, the oracle never predicts the
mask.

:class:`MarkovChain` is the special case ``emission = identity`` (the hidden state is the token).
"""

from __future__ import annotations

import itertools
import math
from typing import Optional

import torch
from torch import Tensor

from .. import _checks
from .padding import check_pad_id, leading_pads

__all__ = ["HMMLanguage", "MarkovChain", "OracleModel", "logits_from_probs", "all_sequences",
           "MAX_STATES", "MAX_VOCAB", "MAX_TOKENS", "MAX_SEQUENCES", "MAX_WIDTH"]

#: upper bounds on sizes (each sizes an allocation): hidden states and vocabulary of
#: :meth:`HMMLanguage.random` (its ``[S, S]`` and ``[S, V]`` tables), tokens drawn by one
#: :meth:`HMMLanguage.sample` (``n * length``), sequences enumerated by :func:`all_sequences`
#: (``vocab ** length``, also bounding :meth:`HMMLanguage.completion_law` and ``entropy``), and
#: the width of :func:`logits_from_probs`
MAX_STATES = 1 << 10
MAX_VOCAB = 1 << 14
MAX_TOKENS = 1 << 24
MAX_SEQUENCES = 1 << 20
MAX_WIDTH = 1 << 20


def _check_enumeration(vocab: int, length: int, name: str = "length") -> None:
    """Refuse ``vocab ** length > MAX_SEQUENCES`` (and, for one token, ``length > MAX_SEQUENCES``)
    without computing a huge power."""
    if length > MAX_SEQUENCES:
        raise ValueError(f"{name} must be <= {MAX_SEQUENCES} to enumerate sequences; got {length}")
    count = 1
    for _ in range(length):
        count *= vocab
        if count > MAX_SEQUENCES:
            raise ValueError(f"vocab={vocab} and {name}={length} give vocab**{name} sequences to "
                             f"enumerate; at most {MAX_SEQUENCES} are allowed")


def _as_prob(x, name: str, dims: int) -> Tensor:
    if not isinstance(x, Tensor) and isinstance(x, (list, tuple)):
        try:  # lists straight to float64 (through float32 they would lose digits)
            x = torch.tensor(x, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError, OverflowError) as e:
            raise TypeError(f"{name} must be a tensor or an array of numbers ({e})") from None
    t = _checks.tensor(name, x, convert=True).to(torch.float64).clone()
    if t.dim() != dims:
        raise ValueError(f"{name} must have {dims} dimension(s), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"{name} must be finite and non-negative")
    sums = t.sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-8):
        raise ValueError(f"{name} must sum to 1 along its last axis, got sums {sums.tolist()}")
    return t / sums.unsqueeze(-1)


def logits_from_probs(probs: Tensor, width: int) -> Tensor:
    """Log-probabilities ``[..., V]`` padded with ``-inf`` up to ``width`` entries (the mask's
    and any other non-token id's logit is ``-inf``, so softmax gives back ``probs``)."""
    probs = _checks.tensor("probs", probs, convert=True, floating=True, min_dim=1)
    if probs.numel() and (bool((probs < 0).any()) or bool((probs.sum(-1) <= 0).any())):
        raise ValueError("probs must be non-negative with positive mass in every row (its last axis)")
    v = probs.shape[-1]
    width = _checks.integer("width", width, 1, MAX_WIDTH)
    if width < v:
        raise ValueError(f"width must be >= {v}, got {width}")
    out = torch.full((*probs.shape[:-1], width), -math.inf, dtype=probs.dtype, device=probs.device)
    out[..., :v] = torch.log(probs)
    return out


class OracleModel:
    """An exact oracle wrapped as a decoding model: ``logits = model(tokens)``.

    ``tokens``: ``[batch, L]`` long with real tokens and ``mask_id``. ``logits``: ``[batch, L,
    width]`` float64 with ``width = max(V, mask_id + 1)``; ``softmax(logits)[b, i]`` is the exact
    ``p(x_i | visible tokens)`` at a masked position and the one-hot of the token at a visible one.
    ``calls`` counts the calls (the number of function evaluations).

    ``pad_id``: left-padded rows (see :mod:`diffkit.discrete.padding`): each row's leading run of
    ``pad_id`` is absent, so the row gets the conditionals of the same row without it (its padding
    gets zero logits, never read). Rows are then evaluated one at a time, so each row's numbers do
    not depend on the batch.
    """

    def __init__(self, oracle, mask_id: int, pad_id: Optional[int] = None):
        self.oracle = oracle
        self.mask_id = int(mask_id)
        self.pad_id = check_pad_id(pad_id, self.mask_id)
        self.width = max(oracle.vocab_size, self.mask_id + 1)
        self.calls = 0

    @property
    def vocab_size(self) -> int:
        """Number of real tokens of the oracle (a prompt's ids must lie below it)."""
        return self.oracle.vocab_size

    def __call__(self, tokens: Tensor) -> Tensor:
        self.calls += 1
        if self.pad_id is not None and isinstance(tokens, Tensor) and tokens.dim() == 2:
            pads = leading_pads(tokens, self.pad_id)
            if pads.any():
                out = torch.zeros(*tokens.shape, self.width, dtype=torch.float64)
                for j, k in enumerate(pads.sum(1).tolist()):
                    probs = self.oracle.marginals(tokens[j:j + 1, k:], self.mask_id)
                    out[j, k:] = logits_from_probs(probs, self.width)[0]
                return out
        probs = self.oracle.marginals(tokens, self.mask_id)
        return logits_from_probs(probs, self.width)


class HMMLanguage:
    """A language from a hidden Markov model: ``initial [S]``, ``transition [S, S]`` (rows: from),
    ``emission [S, V]``; all rows are probability vectors. Parameters are kept in float64.

    See the module docstring for the formulas and the vocabulary convention (``mask_id = V`` by
    default).
    """

    def __init__(self, initial, transition, emission):
        self.initial = _as_prob(initial, "initial", 1)
        self.transition = _as_prob(transition, "transition", 2)
        self.emission = _as_prob(emission, "emission", 2)
        s = self.initial.shape[0]
        if self.transition.shape != (s, s):
            raise ValueError(f"transition must be [{s}, {s}] (initial has {s} states), got "
                             f"{tuple(self.transition.shape)}")
        if self.emission.shape[0] != s:
            raise ValueError(f"emission must have {s} rows (initial has {s} states), got {self.emission.shape[0]}")

    # ------------------------------------------------------------------ construction
    @property
    def num_states(self) -> int:
        return self.initial.shape[0]

    @property
    def vocab_size(self) -> int:
        """Number of real tokens ``V`` (ids ``0 .. V-1``)."""
        return self.emission.shape[1]

    @property
    def mask_id(self) -> int:
        """The default mask id, ``V``."""
        return self.vocab_size

    @classmethod
    def random(cls, states: int, vocab: int, generator: Optional[torch.Generator] = None,
               concentration: float = 0.5, floor: float = 1e-3) -> "HMMLanguage":
        """A random, well-conditioned HMM: every row drawn from a symmetric Dirichlet with the
        given ``concentration`` (small: peaked, strongly dependent rows; large: near uniform),
        mixed with ``floor`` times the uniform row so that no probability is zero."""
        states = _checks.integer("states", states, 1, MAX_STATES)
        vocab = _checks.integer("vocab", vocab, 1, MAX_VOCAB)
        concentration = _checks.real("concentration", concentration, 0.0, low_open=True)
        floor = _checks.real("floor", floor, 0.0, 1.0, low_open=True)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")

        def rows(n, k):
            shape = torch.full((n, k), float(concentration), dtype=torch.float64)
            g = torch._standard_gamma(shape, generator=generator) + 1e-300
            p = g / g.sum(-1, keepdim=True)
            return (1 - floor) * p + floor / k

        return cls(rows(1, states)[0], rows(states, states), rows(states, vocab))

    @classmethod
    def default(cls) -> "HMMLanguage":
        """The course's small language: 2 hidden 'topics', 3 tokens, sticky topics.

        Topic 0 mostly emits tokens 0/1, topic 1 mostly token 2; topics persist with probability
        0.85, so tokens far apart are correlated and parallel decoding has something to get wrong.
        """
        initial = [0.5, 0.5]
        transition = [[0.85, 0.15], [0.15, 0.85]]
        emission = [[0.55, 0.4, 0.05], [0.05, 0.15, 0.8]]
        return cls(initial, transition, emission)

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, length: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """``n`` sequences of ``length`` tokens, ``[n, length]`` long (ancestral sampling)."""
        n = _checks.integer("n", n, 0, MAX_TOKENS)
        length = _checks.integer("length", length, 0, MAX_TOKENS)
        if n * length > MAX_TOKENS:
            raise ValueError(f"n * length must be <= {MAX_TOKENS} tokens; got n={n}, length={length}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        tokens = torch.empty(n, length, dtype=torch.long)
        if length == 0 or n == 0:
            return tokens
        state = torch.multinomial(self.initial.expand(n, -1), 1, generator=generator)[:, 0]
        for i in range(length):
            if i > 0:
                state = torch.multinomial(self.transition[state], 1, generator=generator)[:, 0]
            tokens[:, i] = torch.multinomial(self.emission[state], 1, generator=generator)[:, 0]
        return tokens

    # ------------------------------------------------------------------ exact inference
    def _check_tokens(self, tokens: Tensor, mask_id: Optional[int]) -> tuple[Tensor, Tensor]:
        tokens = _checks.tensor("tokens", tokens, convert=True, floating=False)
        if mask_id is not None:
            mask_id = _checks.integer("mask_id", mask_id, 0)
        if tokens.dim() == 1:
            tokens = tokens.unsqueeze(0)
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be [n, length], got shape {tuple(tokens.shape)}")
        tokens = tokens.long().cpu()
        visible = torch.ones_like(tokens, dtype=torch.bool) if mask_id is None else tokens != mask_id
        if mask_id is not None and 0 <= mask_id < self.vocab_size:
            raise ValueError(f"mask_id must not be a real token (0..{self.vocab_size - 1}), got {mask_id}")
        real = tokens[visible]
        if real.numel() and (real.min() < 0 or real.max() >= self.vocab_size):
            raise ValueError(f"tokens must lie in 0..{self.vocab_size - 1} (or be mask_id={mask_id})")
        return tokens, visible

    def _evidence(self, tokens: Tensor, visible: Tensor) -> Tensor:
        """``e[n, i, s] = emission[s, x_i]`` at visible positions, ``1`` at masked ones."""
        safe = torch.where(visible, tokens, torch.zeros_like(tokens))
        e = self.emission.T[safe]  # [n, L, S]
        return torch.where(visible.unsqueeze(-1), e, torch.ones_like(e))

    def _forward(self, e: Tensor) -> tuple[Tensor, Tensor]:
        """Scaled forward pass: normalised ``alpha_i(s) = p(s_i | evidence_{<=i})`` and the log of
        each step's normaliser ``c_i = p(evidence_i | evidence_{<i})`` (Rabiner Sec. V.A)."""
        n, length, s = e.shape
        alpha = torch.empty(n, length, s, dtype=torch.float64)
        logc = torch.empty(n, length, dtype=torch.float64)
        a = self.initial.unsqueeze(0) * e[:, 0]
        for i in range(length):
            if i > 0:
                a = (alpha[:, i - 1] @ self.transition) * e[:, i]
            c = a.sum(-1)
            alpha[:, i] = a / c.unsqueeze(-1)
            logc[:, i] = torch.log(c)
        return alpha, logc

    def log_prob(self, tokens: Tensor, mask_id: Optional[int] = None) -> Tensor:
        """Exact ``log p(tokens)`` ``[n]`` (forward algorithm, float64). With ``mask_id``, positions
        holding it are summed out: ``log p(visible tokens)``."""
        tokens, visible = self._check_tokens(tokens, mask_id)
        if tokens.shape[1] == 0:
            return torch.zeros(tokens.shape[0], dtype=torch.float64)
        _, logc = self._forward(self._evidence(tokens, visible))
        return logc.sum(-1)

    def marginals(self, tokens: Tensor, mask_id: int) -> Tensor:
        """Exact ``p(x_i | visible tokens)`` ``[n, L, V]`` float64 by scaled forward-backward
        (Rabiner eq. 27). Visible positions get the one-hot of their token."""
        tokens, visible = self._check_tokens(tokens, mask_id)
        n, length = tokens.shape
        v = self.vocab_size
        if length == 0:
            return torch.zeros(n, 0, v, dtype=torch.float64)
        e = self._evidence(tokens, visible)
        alpha, _ = self._forward(e)
        beta = torch.ones(n, length, self.num_states, dtype=torch.float64)
        for i in range(length - 2, -1, -1):
            b = (e[:, i + 1] * beta[:, i + 1]) @ self.transition.T
            beta[:, i] = b / b.sum(-1, keepdim=True)
        post = alpha * beta
        post = post / post.sum(-1, keepdim=True)  # p(s_i | all evidence)
        probs = post @ self.emission  # at masked positions the evidence factor is 1
        probs = probs / probs.sum(-1, keepdim=True)
        onehot = torch.nn.functional.one_hot(torch.where(visible, tokens, 0), v).to(torch.float64)
        return torch.where(visible.unsqueeze(-1), onehot, probs)

    def as_model(self, mask_id: Optional[int] = None, pad_id: Optional[int] = None) -> OracleModel:
        """The oracle as a decoding model (see :class:`OracleModel`); ``mask_id`` defaults to V;
        ``pad_id``: left padding treated as absent."""
        mask_id = self.vocab_size if mask_id is None else _checks.integer("mask_id", mask_id, 0)
        if 0 <= mask_id < self.vocab_size:
            raise ValueError(f"mask_id must not be a real token (0..{self.vocab_size - 1}), got {mask_id}")
        return OracleModel(self, mask_id, pad_id)

    # ------------------------------------------------------------------ exact laws
    def completion_law(self, prompt: Tensor, gen_length: int) -> tuple[Tensor, Tensor]:
        """The true law of the next ``gen_length`` tokens after ``prompt`` (1-D):
        ``(completions [V**gen_length, gen_length], probs [V**gen_length])`` by enumeration."""
        gen_length = _checks.integer("gen_length", gen_length, 0)
        _check_enumeration(self.vocab_size, gen_length, "gen_length")
        prompt = _checks.tensor("prompt", prompt, convert=True, floating=False).long().reshape(-1)
        comps = all_sequences(self.vocab_size, gen_length)
        full = torch.cat([prompt.expand(comps.shape[0], -1), comps], 1)
        logp = self.log_prob(full)
        if prompt.numel():
            logp = logp - self.log_prob(prompt.unsqueeze(0))
        return comps, torch.exp(logp)

    def entropy(self, length: int) -> float:
        """Exact entropy ``H(x_1..x_length)`` in nats by enumeration (small lengths only)."""
        length = _checks.integer("length", length, 0)
        _check_enumeration(self.vocab_size, length)
        _, p = self.completion_law(torch.zeros(0, dtype=torch.long), length)
        return float(-torch.special.xlogy(p, p).sum())


class MarkovChain(HMMLanguage):
    """A first-order Markov chain over tokens: ``initial [V]``, ``transition [V, V]``; an
    :class:`HMMLanguage` whose emission is the identity."""

    def __init__(self, initial, transition):
        init = torch.as_tensor(initial, dtype=torch.float64)
        super().__init__(init, transition, torch.eye(init.shape[0], dtype=torch.float64))

    @classmethod
    def random(cls, vocab: int, generator: Optional[torch.Generator] = None,  # type: ignore[override]
               concentration: float = 0.5, floor: float = 1e-3) -> "MarkovChain":
        """A random chain with Dirichlet(``concentration``) rows mixed with ``floor`` x uniform."""
        h = HMMLanguage.random(vocab, 1, generator, concentration, floor)
        return cls(h.initial, h.transition)


def all_sequences(vocab: int, length: int) -> Tensor:
    """Every sequence of ``length`` tokens from ``0 .. vocab-1``, ``[vocab**length, length]``, in
    lexicographic order; ``vocab ** length`` is at most :data:`MAX_SEQUENCES`."""
    vocab = _checks.integer("vocab", vocab, 1)
    length = _checks.integer("length", length, 0)
    _check_enumeration(vocab, length)
    if length == 0:
        return torch.zeros(1, 0, dtype=torch.long)
    return torch.tensor(list(itertools.product(range(vocab), repeat=length)), dtype=torch.long)
