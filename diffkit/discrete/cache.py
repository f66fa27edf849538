"""Key-value caches for decoding a bidirectional masked-diffusion transformer.

A causal language model can cache keys and values exactly because a token's K/V never change once
written. In a bidirectional dLLM every token attends to every other token, so a token's K/V at
layers >= 2 change whenever *any* token is unmasked: caching is an approximation. The papers rely
on K/V changing little between adjacent rounds. :class:`KVCacheModel` wraps a
:class:`diffkit.nn.MaskedTransformer` as a decode model (``tokens -> logits``) with one of:

``"none"``
    Plain forward every call; logits equal ``net(tokens)`` exactly (same kernels, same numbers).
``"prefix"`` (Fast-dLLM, Wu et al. 2025, Sec. 3.2 "prefix KV cache")
    At the first call of each block (after ``begin_block``) one full forward runs and the K/V of
    the positions before the block, at every layer, are stored. Later rounds of the block run only
    the positions ``[start, L)`` (block and suffix) as queries, attending to the stored prefix K/V
    and their own fresh K/V.
``"dual"`` (Fast-dLLM, Sec. 3.2 "DualCache")
    As prefix, but the suffix ``[end, L)`` K/V are stored too; later rounds compute only the block.
``"delayed"`` (dKV-Cache, Ma et al. 2025, "dKV-Cache-Decode")
    A token's K/V are cached one round *after* it is decoded: at the first call where a position
    holds a non-mask token its K/V are computed fresh (with the decoded token as input) and stored;
    from the next call on they are reused. Masked positions are always recomputed. A stored entry is
    dropped as soon as the token at its position changes. ``refresh_every=k`` recomputes everything
    every ``k`` calls (dKV-Cache's refresh).
``"dual-prompt"`` (this package's refresh policy)
    As dual, plus two refreshes. (a) The prompt (the positions before the first block of a decode)
    is recomputed at every round, with the block: the prompt's upper-layer states then see every token committed
    so far, which is where a network routes "what has been written already" (the stale-context
    failure of prefix and dual on ``shuffle`` and ``latin``; Window-Diffusion and dKV-Cache describe
    the same transient after tokens are decoded). (b) Once ``refresh_after`` tokens (default: half
    the block) have been committed since the last full forward, the next call is a full forward,
    so the cached earlier blocks and masked suffix never lag more than half a block of commits.
    ``window=w`` also recomputes the ``w`` positions before the block (Window-Diffusion's local
    window). Cost per round: ``prompt + window + block`` query positions instead of ``block``, plus
    about two full forwards per block.

Effect on the output, precisely (tested in ``tests/test_discrete_cache.py``):

1. ``"none"``: identical to ``net(tokens)``.
2. Every mode is exact at a refresh: the first call after ``begin_block`` for prefix/dual, the first
   call of a decode (and every ``refresh_every``-th call) for delayed.
3. Between refreshes, a cached round equals a forward pass in which, at every layer, the hidden
   states of the cached positions are frozen at their values from the pass that stored them
   (the block-start pass for prefix/dual/dual-prompt; for delayed, the pass one round after the
   token was decoded); dual-prompt recomputes the prompt's states too. Only positions computed fresh get correct logits; the others are returned stale
   (from the pass that last computed them). Decoding reads logits only at masked positions of the
   current block, which prefix and dual compute fresh; delayed computes every masked position fresh.
4. dual-prompt is exact at every round when the decode is a single block (nothing is cached but
   the positions after the block, which do not exist): the six list tasks decoded in one block.
5. Layer 1 K/V depend only on a token and its position. So for a one-layer net every mode is
   exact at every round, as long as the cached tokens do not change (prefix: positions before the
   block; dual: those and the masked suffix; which is what block decoding guarantees).
6. For deeper nets the logits differ from the exact forward; ``benchmarks/dllm_transformer.py``
   measures by how much and what it costs. On the shipped ``hmm-default`` net every cache decodes
   the same tokens as no cache (lengths 64 and 256, blocks of 32). On the shipped ``tasks`` net the
   caches keep copy/reverse/sort/replace-index within 1.5 points but break ``shuffle`` (100% -> 0%)
   and ``latin``: that 3-layer net passes "which items are used already" through the prompt's
   upper-layer states, exactly what a stale cache freezes. The approximation is only as good as
   the assumption that cached K/V drift little between rounds.

GPU: the prefix and dual paths slice with python integers and run without host synchronisation;
the delayed path synchronises once per call (the largest number of uncached positions in the batch
fixes the shape of the gathered queries). Dtype and device follow the network and the tokens.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

__all__ = ["MODES", "KVCacheModel"]

MODES = ("none", "prefix", "dual", "delayed", "dual-prompt")


class KVCacheModel:
    """Decode model ``logits = model(tokens)`` over a :class:`~diffkit.nn.MaskedTransformer` with a K/V cache.

    Parameters
    ----------
    net: the transformer (anything with ``forward(tokens, positions=None, kv_hook=None)``).
    mode: one of :data:`MODES` (see the module docstring for each mode's effect on output).
    mask_id: the mask token id (needed by ``"delayed"``); defaults to ``net.mask_id``.
    refresh_every: recompute all positions every this many calls (``None``: only at block starts for
        prefix / dual / dual-prompt, never for delayed).
    window: for ``"dual-prompt"``, also recompute the ``window`` positions before the block.
    refresh_after: for ``"dual-prompt"``, a full forward once this many tokens were committed
        since the last one (``None``: half the block length).

    ``begin_block(tokens, start, end)`` is called by :func:`diffkit.discrete.decode` before the
    first round of each block. Without it prefix and dual fall back to full forwards (exact).
    ``stats`` counts calls, full forwards, and query positions computed (a proxy for compute).
    A wrapper detects a new decode when a block starts at or before the previous block's start
    (and when the sequence shape changes); call :meth:`reset` between unrelated sequences used
    outside :func:`~diffkit.discrete.decode`.
    """

    def __init__(self, net, mode: str = "none", mask_id: Optional[int] = None,
                 refresh_every: Optional[int] = None, window: int = 0,
                 refresh_after: Optional[int] = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mask_id is None:
            mask_id = getattr(net, "mask_id", None)
        if mode in ("delayed", "dual-prompt") and mask_id is None:
            raise ValueError(f"mode={mode!r} needs mask_id (or net.mask_id)")
        if refresh_every is not None and refresh_every < 1:
            raise ValueError(f"refresh_every must be a positive integer or None, got {refresh_every}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 0:
            raise ValueError(f"window must be an integer >= 0, got {window!r}")
        self.net, self.mode, self.mask_id, self.refresh_every = net, mode, mask_id, refresh_every
        if refresh_after is not None and (isinstance(refresh_after, bool) or refresh_after < 1):
            raise ValueError(f"refresh_after must be a positive integer or None, got {refresh_after!r}")
        self.window, self.refresh_after = window, refresh_after
        self.reset()

    # -- state -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every cached tensor (the next call is a full, exact forward)."""
        self._block: Optional[tuple[int, int]] = None  # (start, end) of the current block
        self._anchor = 0  # dual-prompt: positions [0, anchor) are recomputed every round
        self._pending = False  # a full forward is due at the next call
        self._k: list[Tensor] = []
        self._v: list[Tensor] = []
        self._logits: Optional[Tensor] = None
        self._tokens: Optional[Tensor] = None
        self._since_refresh = 0
        self.stats = {"calls": 0, "full": 0, "query_positions": 0}

    def begin_block(self, tokens: Tensor, start: int, end: int) -> None:
        """Mark the start of a block ``[start, end)``; the next call refreshes the cache."""
        start, end = int(start), int(end)
        if not 0 <= start < end <= tokens.shape[1]:
            raise ValueError(f"need 0 <= start < end <= L={tokens.shape[1]}, got start={start}, end={end}")
        if self._block is None or start <= self._block[0]:
            # a new decode started (blocks only move right within one decode)
            self._k, self._v, self._logits, self._tokens = [], [], None, None
            self._anchor = start
        self._block = (start, end)
        self._pending = True

    # -- forward passes ----------------------------------------------------------------------------
    def _full(self, tokens: Tensor) -> Tensor:
        ks: list[Tensor] = []
        vs: list[Tensor] = []

        def record(layer: int, k: Tensor, v: Tensor):
            ks.append(k)
            vs.append(v)
            return k, v

        logits = self.net(tokens, kv_hook=None if self.mode == "none" else record)
        self._k, self._v, self._logits, self._tokens = ks, vs, logits, tokens.clone()
        self._since_refresh = 0
        self._pending = False
        self.stats["full"] += 1
        self.stats["query_positions"] += tokens.shape[0] * tokens.shape[1]
        return logits

    def _stale(self, tokens: Tensor) -> bool:
        return self._logits is None or self._logits.shape[:2] != tokens.shape

    def __call__(self, tokens: Tensor) -> Tensor:
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape [batch, L], got {tuple(tokens.shape)}")
        self.stats["calls"] += 1
        if self.mode == "none":
            self.stats["query_positions"] += tokens.shape[0] * tokens.shape[1]
            return self.net(tokens)
        if self.mode in ("prefix", "dual", "dual-prompt"):
            due = self.refresh_every is not None and self._since_refresh + 1 >= self.refresh_every
            if self.mode == "dual-prompt" and not due and not self._stale(tokens) and self._block:
                m = self.refresh_after or max(1, (self._block[1] - self._block[0]) // 2)
                committed = ((self._tokens == self.mask_id) & (tokens != self.mask_id)).sum(1)
                due = bool(committed.max() >= m)
            if self._pending or self._block is None or self._stale(tokens) or due:
                return self._full(tokens)
            self._since_refresh += 1
            return self._block_round(tokens)
        # delayed
        due = self.refresh_every is not None and self._since_refresh + 1 >= self.refresh_every
        if self._stale(tokens) or due:
            return self._full(tokens)
        return self._delayed_round(tokens)

    def _block_round(self, tokens: Tensor) -> Tensor:
        """One round of prefix / dual caching (Fast-dLLM): recompute ``[start, L)`` or ``[start, end)``
        (dual-prompt: and ``[0, prompt)``)."""
        start, end = self._block
        if self.mode == "dual-prompt" and min(self._anchor, start) > 0:
            return self._anchored_round(tokens, min(self._anchor, start), start, end)
        stop = tokens.shape[1] if self.mode == "prefix" else end
        ks, vs = self._k, self._v

        def hook(layer: int, k: Tensor, v: Tensor):
            kc, vc = ks[layer], vs[layer]
            return (torch.cat([kc[:, :, :start], k, kc[:, :, stop:]], dim=2),
                    torch.cat([vc[:, :, :start], v, vc[:, :, stop:]], dim=2))

        positions = torch.arange(start, stop, device=tokens.device)
        fresh = self.net(tokens[:, start:stop], positions=positions, kv_hook=hook)
        self.stats["query_positions"] += tokens.shape[0] * (stop - start)
        old = self._logits
        return torch.cat([old[:, :start], fresh, old[:, stop:]], dim=1)

    def _anchored_round(self, tokens: Tensor, p: int, start: int, end: int) -> Tensor:
        """dual-prompt: recompute ``[0, p)`` and ``[w, end)`` with ``w = max(p, start - window)``;
        the rest is read from the cache."""
        ks, vs = self._k, self._v
        ws = max(p, start - self.window)

        def hook(layer: int, k: Tensor, v: Tensor):
            kc, vc = ks[layer], vs[layer]
            return (torch.cat([k[:, :, :p], kc[:, :, p:ws], k[:, :, p:], kc[:, :, end:]], dim=2),
                    torch.cat([v[:, :, :p], vc[:, :, p:ws], v[:, :, p:], vc[:, :, end:]], dim=2))

        positions = torch.cat([torch.arange(p, device=tokens.device),
                               torch.arange(ws, end, device=tokens.device)])
        fresh = self.net(torch.cat([tokens[:, :p], tokens[:, ws:end]], 1), positions=positions,
                         kv_hook=hook)
        self.stats["query_positions"] += tokens.shape[0] * (p + end - ws)
        old = self._logits
        return torch.cat([fresh[:, :p], old[:, p:ws], fresh[:, p:], old[:, end:]], dim=1)

    def _delayed_round(self, tokens: Tensor) -> Tensor:
        """One round of the delayed cache (dKV-Cache-Decode)."""
        valid = (self._tokens == tokens) & (tokens != self.mask_id)  # cached K/V still usable
        fresh_mask = ~valid
        n = max(int(fresh_mask.sum(dim=1).max()), 1)  # the one host sync of this path
        order = torch.argsort(valid.to(torch.int8), dim=1, stable=True)  # uncached positions first
        sel = order[:, :n]  # [B, n]
        sel_fresh = fresh_mask.gather(1, sel)  # False where a row had fewer than n uncached positions
        new_k: list[Tensor] = []
        new_v: list[Tensor] = []

        def hook(layer: int, k: Tensor, v: Tensor):
            kc, vc = self._k[layer], self._v[layer]
            idx = sel[:, None, :, None].expand(-1, kc.shape[1], -1, kc.shape[3])
            keep = sel_fresh[:, None, :, None]
            k_all = kc.scatter(2, idx, torch.where(keep, k, kc.gather(2, idx)))
            v_all = vc.scatter(2, idx, torch.where(keep, v, vc.gather(2, idx)))
            new_k.append(k_all)
            new_v.append(v_all)
            return k_all, v_all

        fresh = self.net(tokens.gather(1, sel), positions=sel, kv_hook=hook)
        self.stats["query_positions"] += tokens.shape[0] * n
        old = self._logits
        idx = sel[:, :, None].expand(-1, -1, old.shape[2])
        logits = old.scatter(1, idx, torch.where(sel_fresh[:, :, None], fresh, old.gather(1, idx)))
        # every non-mask position now holds K/V computed with its current token: cache them all
        self._k, self._v, self._logits, self._tokens = new_k, new_v, logits, tokens.clone()
        self._since_refresh += 1
        return logits

    def __repr__(self) -> str:
        return f"KVCacheModel(mode={self.mode!r}, mask_id={self.mask_id}, refresh_every={self.refresh_every})"
