"""The round planner shared by :func:`~diffkit.discrete.decode` and
:func:`~diffkit.discrete.output_law`: block bounds and the number of positions a fixed-size
strategy commits in each round.

Blocks (semi-autoregressive decoding, LLaDA, Nie et al. 2025): the generation region is split
into ``gen_length // block_length`` blocks decoded left to right; each block gets
``steps // num_blocks`` rounds.

Schedules of a block's rounds (``n`` masked positions in the block):

``"even"`` (LLaDA's ``get_num_transfer_tokens``)
    ``n`` split evenly over the rounds, the remainder going to the earliest rounds; the split is
    fixed from the count at the block's start.
``"dream"`` (Dream's ``_sample``, Ye et al. 2025)
    timesteps ``t_i = linspace(1, eps, S + 1)`` (float32, as the reference computes them); round
    ``i < S - 1`` commits ``int(n_i (1 - t_{i+1} / t_i))`` of the ``n_i`` positions *still masked*,
    the last round commits the rest. The reference averages ``n_i`` over the batch; here ``n_i`` is
    each row's own count (so a row decodes the same alone or in a batch; equal for batch 1).

Both are computed lazily: ``steps`` may be huge (rounds that commit nothing cost nothing and are
skipped without a model call), nothing of size ``steps`` is allocated for ``"even"``, and
``"dream"`` holds one float32 table of ``S + 1`` timesteps, so it bounds ``steps`` by
:data:`MAX_DREAM_STEPS` per block.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

__all__ = ["Plan", "SCHEDULES", "MAX_DREAM_STEPS", "even_split"]

SCHEDULES = ("even", "dream")
#: the largest number of rounds per block that the ``"dream"`` schedule accepts (its float32
#: timestep table is allocated, 4 bytes per round)
MAX_DREAM_STEPS = 1 << 22


def even_split(masked: Tensor, steps: int) -> Tensor:
    """LLaDA's split of ``masked [batch]`` counts over ``steps`` rounds: ``[batch, steps]`` long,
    the remainder to the earliest rounds. Allocates ``batch * steps``: for tables, not for
    decoding (the planner computes one round at a time)."""
    masked = torch.as_tensor(masked).long().reshape(-1)
    r = torch.arange(int(steps), device=masked.device)
    return (masked // steps).unsqueeze(1) + (r.unsqueeze(0) < (masked % steps).unsqueeze(1)).long()


@dataclass(frozen=True)
class Plan:
    """Where the blocks lie and how many positions each round commits.

    ``prompt_len``, ``gen_length``, ``block_length`` (divides ``gen_length``), ``steps`` (rounds in
    all, a multiple of the number of blocks), ``schedule`` (one of :data:`SCHEDULES`), ``eps``
    (Dream's last timestep, in ``(0, 1)``)."""

    prompt_len: int
    gen_length: int
    block_length: int
    steps: int
    schedule: str = "even"
    eps: float = 1e-3

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def per_block(self) -> int:
        """Rounds per block of a fixed-size strategy."""
        return self.steps // self.num_blocks

    def blocks(self) -> list[tuple[int, int]]:
        """Absolute ``[start, end)`` of each block, left to right."""
        p, b = self.prompt_len, self.block_length
        return [(p + i * b, p + (i + 1) * b) for i in range(self.num_blocks)]

    def block_of(self, position: int) -> tuple[int, int]:
        """The block holding the absolute ``position`` of the generation."""
        i = (int(position) - self.prompt_len) // self.block_length
        return self.prompt_len + i * self.block_length, self.prompt_len + (i + 1) * self.block_length

    @cached_property
    def _timesteps(self) -> Tensor:
        return torch.linspace(1, self.eps, self.per_block + 1)

    def budget(self, r: int, masked_now: Tensor, masked_at_start: Tensor) -> Tensor:
        """``[batch]`` long: positions to commit in round ``r`` (0-based, within the block) given
        each row's count of masked block positions now and at the block's start."""
        s = self.per_block
        if self.schedule == "even":
            m0 = masked_at_start.long()
            return m0 // s + (r < m0 % s).long()
        if r >= s - 1:
            return masked_now.long()
        t, u = self._timesteps[r], self._timesteps[r + 1]
        # the reference's arithmetic: float32 timesteps, a float count, truncation toward zero
        frac = 1 - u / t
        return (masked_now.to(torch.float32) * frac).long()

    def next_round(self, r: int, masked_now: Tensor, masked_at_start: Tensor) -> int:
        """The first round ``>= r`` that commits something in some row (rounds that commit
        nothing are skipped), or ``per_block`` when none is left."""
        s = self.per_block
        if r >= s:
            return s
        if self.budget(r, masked_now, masked_at_start).any():
            return r
        if self.schedule == "even":
            m0 = masked_at_start.long()
            # rounds >= max remainder commit m0 // s, which is 0 here for every row
            return s if not (m0 // s).any() else r
        # dream: the counts stay fixed until a round commits, so look ahead in one pass
        t = self._timesteps
        frac = 1 - t[r + 1: s] / t[r: s - 1]
        k = (masked_now.to(torch.float32).unsqueeze(1) * frac.unsqueeze(0)).long()
        hit = k.any(0).nonzero()
        return r + int(hit[0, 0]) if hit.numel() else s - 1
