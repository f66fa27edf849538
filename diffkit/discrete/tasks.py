"""Synthetic list tasks after ParallelBench, with exact answer sets and exact oracle models.

ParallelBench (Kang et al. 2025, "ParallelBench: Understanding the trade-offs of parallel decoding
in diffusion LLMs") shows that decoding several tokens of a diffusion LLM in one round fails when
the answer's tokens depend on each other: each token is drawn from its own marginal, and a product
of marginals is not the joint. These tasks make that failure exact: for every prompt the set of
valid answers is enumerated, and the oracle model is the *uniform law over the valid answers*, so
its conditionals ``p(x_i | prompt, visible answer tokens)`` are exact counts.

Tasks (``TASKS``), each with a fixed prompt and answer length:

| name | prompt | valid answers |
| --- | --- | --- |
| ``copy`` | ``[copy, a_1..a_n]`` | ``a_1..a_n`` |
| ``reverse`` | ``[reverse, a_1..a_n]`` | ``a_n..a_1`` |
| ``sort`` | ``[sort, a_1..a_n]`` | the items in ascending order |
| ``shuffle`` | ``[shuffle, a_1..a_n]`` (distinct items when ``n <= symbols``) | every distinct permutation |
| ``replace-index`` | ``[replace-index, a_1..a_n, pos_j, b]`` | ``a`` with item ``j`` replaced by ``b`` |
| ``latin`` | ``[latin, r_1..r_4]`` (a permutation) | rows 2-4 of every 4x4 Latin square whose first row is ``r`` (24 of them) |

Vocabulary, shared by all tasks built with the same ``symbols`` and ``length`` (so one network can
learn them all): ids ``0 .. symbols-1`` are the list items, then ``length`` position tokens
``pos_0 .. pos_{n-1}``, then one token per task name. ``vocab_size`` counts these real tokens and the
mask is ``mask_id = vocab_size`` (the convention of :mod:`diffkit.discrete.hmm`). When the visible
answer tokens are consistent with no valid answer (a parallel round committed an impossible
combination), the oracle predicts the uniform law over the item symbols at the masked positions.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Optional

import torch
from torch import Tensor

from .. import _checks
from .hmm import OracleModel

__all__ = ["TASKS", "Task", "get_task", "latin_squares"]

TASKS = ("copy", "reverse", "sort", "shuffle", "replace-index", "latin")
#: upper bounds of a task's alphabet and list length (they size its vocabulary)
MAX_SYMBOLS = 1 << 10
MAX_TASK_LENGTH = 1 << 10


@functools.lru_cache(maxsize=None)
def latin_squares(order: int = 4) -> tuple[tuple[int, ...], ...]:
    """Every ``order x order`` Latin square over ``0 .. order-1``, each flattened row-major
    (576 for order 4)."""
    perms = list(itertools.permutations(range(order)))
    out = []

    def extend(rows):
        if len(rows) == order:
            out.append(tuple(v for r in rows for v in r))
            return
        for p in perms:
            if all(p[c] != r[c] for r in rows for c in range(order)):
                extend(rows + [p])

    extend([])
    return tuple(out)


class Task:
    """One synthetic task: ``sample`` (prompt, answer) pairs, enumerate ``answers``, ``score``
    outputs, and use the task as an exact oracle (``marginals``, ``log_prob``, ``as_model``).

    Shapes: prompts ``[n, prompt_length]``, answers ``[n, answer_length]``; the model sees the
    concatenation ``[n, prompt_length + answer_length]``.
    """

    def __init__(self, name: str, symbols: int = 4, length: int = 4):
        if not isinstance(name, str):
            raise TypeError(f"task name must be one of {TASKS} (a string); got {type(name).__name__}")
        if name not in TASKS:
            raise ValueError(f"unknown task {name!r}; choose one of {TASKS}")
        symbols = _checks.integer("symbols", symbols, 2, MAX_SYMBOLS)
        length = _checks.integer("length", length, 1, MAX_TASK_LENGTH)
        if name == "latin" and symbols < 4:
            raise ValueError("the latin task needs symbols >= 4")
        self.name = name
        self.symbols = int(symbols)
        self.length = int(length)
        self.vocab_size = self.symbols + self.length + len(TASKS)
        self.mask_id = self.vocab_size
        self.task_token = self.symbols + self.length + TASKS.index(name)
        self._cache: dict = {}
        if name == "latin":
            self.prompt_length, self.answer_length = 1 + 4, 12
        elif name == "replace-index":
            self.prompt_length, self.answer_length = 1 + self.length + 2, self.length
        else:
            self.prompt_length, self.answer_length = 1 + self.length, self.length

    def __repr__(self) -> str:
        return f"Task({self.name!r}, symbols={self.symbols}, length={self.length})"

    def position_token(self, j: int) -> int:
        return self.symbols + j

    # ------------------------------------------------------------------ data
    def sample_prompts(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """``n`` random prompts ``[n, prompt_length]``."""
        rows = []
        for _ in range(n):
            if self.name == "latin":
                items = torch.randperm(4, generator=generator)
            elif self.name == "shuffle" and self.length <= self.symbols:
                items = torch.randperm(self.symbols, generator=generator)[: self.length]
            else:
                items = torch.randint(self.symbols, (self.length,), generator=generator)
            row = [self.task_token] + items.tolist()
            if self.name == "replace-index":
                j = int(torch.randint(self.length, (1,), generator=generator))
                b = int(torch.randint(self.symbols, (1,), generator=generator))
                row += [self.position_token(j), b]
            rows.append(row)
        return torch.tensor(rows, dtype=torch.long).reshape(n, self.prompt_length)

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor]:
        """``n`` pairs ``(prompts [n, P], answers [n, A])``; each answer uniform over the valid
        answers of its prompt (the oracle's law)."""
        prompts = self.sample_prompts(n, generator)
        answers = torch.empty(n, self.answer_length, dtype=torch.long)
        for i in range(n):
            valid = self.answers(prompts[i])
            answers[i] = valid[int(torch.randint(valid.shape[0], (1,), generator=generator))]
        return prompts, answers

    def answers(self, prompt: Tensor) -> Tensor:
        """Every valid answer of one prompt, ``[K, answer_length]`` (sorted, no repeats)."""
        return torch.tensor(self._answers(self._key(prompt)), dtype=torch.long).reshape(-1, self.answer_length)

    def _key(self, prompt) -> tuple[int, ...]:
        key = tuple(int(v) for v in torch.as_tensor(prompt).reshape(-1).tolist())
        if len(key) != self.prompt_length or key[0] != self.task_token:
            raise ValueError(f"not a prompt of task {self.name!r}: {key}")
        return key

    def _answers(self, key: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
        if key not in self._cache:
            self._cache[key] = self._enumerate(key)
        return self._cache[key]

    def _enumerate(self, key: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
        items = key[1: 1 + (4 if self.name == "latin" else self.length)]
        if self.name == "copy":
            return (items,)
        if self.name == "reverse":
            return (items[::-1],)
        if self.name == "sort":
            return (tuple(sorted(items)),)
        if self.name == "shuffle":
            return tuple(sorted(set(itertools.permutations(items))))
        if self.name == "replace-index":
            j, b = key[-2] - self.symbols, key[-1]
            if not (0 <= j < self.length) or not (0 <= b < self.symbols):
                raise ValueError(f"bad replace-index prompt {key}")
            out = list(items)
            out[j] = b
            return (tuple(out),)
        # latin: rows 2..4 of every square whose first row is `items`
        return tuple(sorted(sq[4:] for sq in latin_squares(4) if sq[:4] == items))

    def score(self, prompts: Tensor, outputs: Tensor) -> Tensor:
        """``[n]`` float: 1.0 where the output is exactly one of the prompt's valid answers.
        ``outputs`` is ``[n, answer_length]`` or the full ``[n, prompt_length + answer_length]``."""
        prompts = torch.as_tensor(prompts).reshape(-1, self.prompt_length)
        outputs = torch.as_tensor(outputs)
        if outputs.shape[-1] == self.prompt_length + self.answer_length:
            outputs = outputs[:, self.prompt_length:]
        if outputs.shape != (prompts.shape[0], self.answer_length):
            raise ValueError(f"outputs must be [n, {self.answer_length}] or the full sequences")
        return torch.tensor([float(tuple(o.tolist()) in set(self._answers(self._key(p))))
                             for p, o in zip(prompts, outputs)], dtype=torch.float64)

    # ------------------------------------------------------------------ exact oracle
    def _split(self, tokens: Tensor, mask_id: int) -> tuple[Tensor, Tensor]:
        tokens = torch.as_tensor(tokens).long()
        if tokens.dim() == 1:
            tokens = tokens.unsqueeze(0)
        if tokens.dim() != 2 or tokens.shape[1] != self.prompt_length + self.answer_length:
            raise ValueError(f"tokens must be [n, {self.prompt_length + self.answer_length}], "
                             f"got {tuple(tokens.shape)}")
        if 0 <= mask_id < self.vocab_size:
            raise ValueError(f"mask_id must not be a real token (0..{self.vocab_size - 1})")
        if (tokens[:, : self.prompt_length] == mask_id).any():
            raise ValueError("the prompt must be fully visible")
        return tokens[:, : self.prompt_length], tokens[:, self.prompt_length:]

    def _consistent(self, prompt: Tensor, answer: Tensor, mask_id: int) -> tuple[Tensor, int]:
        valid = self.answers(prompt)
        visible = answer != mask_id
        ok = ((valid == answer) | ~visible).all(-1)
        return valid[ok], valid.shape[0]

    def marginals(self, tokens: Tensor, mask_id: int) -> Tensor:
        """Exact ``p(x_i | prompt, visible answer tokens)`` ``[n, P + A, V]`` under the uniform law
        over valid answers (float64); visible positions get their one-hot."""
        prompts, answers = self._split(tokens, mask_id)
        full = torch.cat([prompts, answers], 1)
        n, length = full.shape
        visible = full != mask_id
        out = torch.nn.functional.one_hot(torch.where(visible, full, 0), self.vocab_size).to(torch.float64)
        for r in range(n):
            cons, _ = self._consistent(prompts[r], answers[r], mask_id)
            for i in range(self.answer_length):
                if visible[r, self.prompt_length + i]:
                    continue
                p = torch.zeros(self.vocab_size, dtype=torch.float64)
                if cons.shape[0]:
                    p.index_add_(0, cons[:, i], torch.full((cons.shape[0],), 1.0 / cons.shape[0],
                                                          dtype=torch.float64))
                else:
                    p[: self.symbols] = 1.0 / self.symbols
                out[r, self.prompt_length + i] = p
        return out

    def log_prob(self, tokens: Tensor, mask_id: Optional[int] = None) -> Tensor:
        """``log p(visible answer tokens | prompt)`` ``[n]`` under the uniform law over valid
        answers (``-inf`` where no valid answer matches)."""
        mask_id = self.mask_id if mask_id is None else mask_id
        prompts, answers = self._split(tokens, mask_id)
        out = torch.empty(prompts.shape[0], dtype=torch.float64)
        for r in range(prompts.shape[0]):
            cons, k = self._consistent(prompts[r], answers[r], mask_id)
            out[r] = math.log(cons.shape[0] / k) if cons.shape[0] else -math.inf
        return out

    def completion_law(self, prompt: Tensor, gen_length: Optional[int] = None) -> tuple[Tensor, Tensor]:
        """The true law of the answer given ``prompt``: ``(answers [K, A], probs [K])``, uniform."""
        if gen_length is not None and gen_length != self.answer_length:
            raise ValueError(f"task {self.name!r} has answer length {self.answer_length}")
        valid = self.answers(prompt)
        return valid, torch.full((valid.shape[0],), 1.0 / valid.shape[0], dtype=torch.float64)

    def as_model(self, mask_id: Optional[int] = None, pad_id: Optional[int] = None) -> OracleModel:
        """The exact oracle as a decoding model (logits ``[n, P + A, max(V, mask_id + 1)]``);
        ``pad_id``: left padding treated as absent."""
        mask_id = self.mask_id if mask_id is None else int(mask_id)
        if 0 <= mask_id < self.vocab_size:
            raise ValueError(f"mask_id must not be a real token (0..{self.vocab_size - 1})")
        return OracleModel(self, mask_id, pad_id)


def get_task(name: str, symbols: int = 4, length: int = 4) -> Task:
    """Build a task by name (one of ``TASKS``)."""
    return Task(name, symbols=symbols, length=length)

