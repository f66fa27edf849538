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
    the block) have been committed in a row since its last full forward, the next call runs that
    row in full (rows are counted apart, so a row's refreshes do not depend on the rest of the
    batch), so the cached earlier blocks and masked suffix never lag more than half a block of
    commits.
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
import torch.nn.functional as F
from torch import Tensor

from .padding import check_pad_id, leading_pads, real_positions

__all__ = ["MODES", "KVCacheModel", "masked_forward"]

MODES = ("none", "prefix", "dual", "delayed", "dual-prompt")


def masked_forward(net, tokens: Tensor, positions: Tensor, kv_hook, keep: Tensor) -> Tensor:
    """A :class:`~diffkit.nn.MaskedTransformer` forward in which the keys with ``keep [batch, T]``
    false are left out of attention (``T``: the sequence the keys cover, as the ``kv_hook`` returns
    them, or ``tokens`` itself without a hook); ``positions [batch, S]`` index the position
    embedding. Each block computes what ``TransformerBlock.forward`` does, with the attention
    mask added (checked against it in ``tests/test_discrete_cache.py``)."""
    h = net.embed(tokens, positions)
    allowed = keep[:, None, None, :]
    for i, block in enumerate(net.blocks):
        b, s, d = h.shape
        q, k, v = block.qkv_heads(h)
        if kv_hook is not None:
            k, v = kv_hook(i, k, v)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        h = h + block.proj(a.transpose(1, 2).reshape(b, s, d))
        h = h + block.mlp(block.ln2(h))
    return net.logits(h)


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

    pad_id: left-padded rows (:mod:`diffkit.discrete.padding`): a row's leading ``pad_id`` run is
        excluded from attention and its positions are counted from its first real token, in every
        mode, so a padded row decodes as it does alone (the network must take ``positions`` per
        row, ``[batch, S]``, and expose ``embed``, ``blocks`` and ``logits`` as
        :class:`~diffkit.nn.MaskedTransformer` does).

    ``begin_decode(cacheable)`` is called by :func:`diffkit.discrete.decode` at the start of each
    decode and ``begin_block(tokens, start, end)`` before the
    first round of each block. Without it prefix and dual fall back to full forwards (exact).
    ``stats`` counts calls, full forwards, and query positions computed (a proxy for compute).
    A wrapper detects a new decode when a block starts at or before the previous block's start
    (and when the sequence shape changes); call :meth:`reset` between unrelated sequences used
    outside :func:`~diffkit.discrete.decode`.
    """

    def __init__(self, net, mode: str = "none", mask_id: Optional[int] = None,
                 refresh_every: Optional[int] = None, window: int = 0,
                 refresh_after: Optional[int] = None, pad_id: Optional[int] = None):
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
        self.pad_id = check_pad_id(pad_id, mask_id)
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
        self._pad: Optional[tuple[Tensor, Tensor]] = None  # (real [B, L], positions [B, L]) of this call
        self._bypass = False  # plain forwards until the next begin_decode
        self.stats = {"calls": 0, "full": 0, "query_positions": 0}

    def begin_decode(self, cacheable: bool = True) -> None:
        """The start of a decode (called by :func:`~diffkit.discrete.decode`): the cache is
        forgotten (statistics are kept). ``cacheable=False`` (strategies that evaluate sequences
        other than the batch's rows, ``draft-verify`` and ``wino``): every call until the next
        ``begin_decode`` is a plain, exact forward."""
        self._block, self._anchor, self._pending = None, 0, False
        self._k, self._v, self._logits, self._tokens = [], [], None, None
        self._since_refresh = 0
        self._bypass = not cacheable

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
        self._bypass = False

    # -- forward passes ----------------------------------------------------------------------------
    def _forward(self, tokens: Tensor, positions: Optional[Tensor] = None, kv_hook=None,
                 rows: Optional[Tensor] = None) -> Tensor:
        """``net(tokens, positions, kv_hook)``; with padding in the call's batch, the padding is
        kept out of attention and positions count from each row's first real token (``rows``:
        the batch rows ``tokens`` holds, when a subset)."""
        if self._pad is None:
            return self.net(tokens, positions=positions, kv_hook=kv_hook)
        keep, real_pos = self._pad
        if rows is not None:
            keep, real_pos = keep[rows], real_pos[rows]
        b = tokens.shape[0]
        if positions is None:
            idx = torch.arange(tokens.shape[1], device=tokens.device).expand(b, -1)
        else:
            idx = positions.expand(b, -1) if positions.ndim == 1 else positions
        fill = self.mask_id if self.mask_id is not None else 0
        tokens = torch.where(keep.gather(1, idx), tokens, torch.full_like(tokens, fill))
        return masked_forward(self.net, tokens, real_pos.gather(1, idx), kv_hook, keep)

    def _run_full(self, tokens: Tensor, rows: Optional[Tensor] = None):
        ks: list[Tensor] = []
        vs: list[Tensor] = []

        def record(layer: int, k: Tensor, v: Tensor):
            ks.append(k)
            vs.append(v)
            return k, v

        logits = self._forward(tokens, kv_hook=None if self.mode == "none" else record, rows=rows)
        self.stats["full"] += 1
        self.stats["query_positions"] += tokens.shape[0] * tokens.shape[1]
        return logits, ks, vs

    def _full(self, tokens: Tensor) -> Tensor:
        logits, ks, vs = self._run_full(tokens)
        self._k, self._v, self._logits, self._tokens = ks, vs, logits, tokens.clone()
        self._since_refresh = 0
        self._pending = False
        return logits

    def _stale(self, tokens: Tensor) -> bool:
        return self._logits is None or self._logits.shape[:2] != tokens.shape

    def __call__(self, tokens: Tensor) -> Tensor:
        with torch.no_grad():  # a decode model never needs gradients
            return self._call(tokens)

    def _call(self, tokens: Tensor) -> Tensor:
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape [batch, L], got {tuple(tokens.shape)}")
        self.stats["calls"] += 1
        pads = leading_pads(tokens, self.pad_id)
        self._pad = (~pads, real_positions(pads)) if bool(pads.any()) else None
        if self.mode == "none" or self._bypass:
            self.stats["query_positions"] += tokens.shape[0] * tokens.shape[1]
            self.stats["full"] += self.mode != "none"
            return self._forward(tokens)
        if self.mode in ("prefix", "dual", "dual-prompt"):
            due = self.refresh_every is not None and self._since_refresh + 1 >= self.refresh_every
            if self._pending or self._block is None or self._stale(tokens) or due:
                return self._full(tokens)
            if self.mode == "dual-prompt":
                m = self.refresh_after or max(1, (self._block[1] - self._block[0]) // 2)
                rows_due = ((self._tokens == self.mask_id) & (tokens != self.mask_id)).sum(1) >= m
                if bool(rows_due.all()):
                    return self._full(tokens)
                if bool(rows_due.any()):
                    self._since_refresh += 1
                    return self._refresh_rows(tokens, rows_due)
            self._since_refresh += 1
            return self._block_round(tokens)
        # delayed
        due = self.refresh_every is not None and self._since_refresh + 1 >= self.refresh_every
        if self._stale(tokens) or due:
            return self._full(tokens)
        return self._delayed_round(tokens)

    def _refresh_rows(self, tokens: Tensor, rows_due: Tensor) -> Tensor:
        """dual-prompt, when some rows reached ``refresh_after`` commits: a full forward for those
        rows only (their cache is replaced) and a cached round for the others, so each row's
        refreshes depend on its own commits, not on the batch."""
        due = rows_due.nonzero().flatten()
        rest = (~rows_due).nonzero().flatten()
        full, ks, vs = self._run_full(tokens[due], rows=due)
        part = self._block_round(tokens[rest], rows=rest)
        logits = torch.empty((tokens.shape[0], *full.shape[1:]), dtype=full.dtype, device=full.device)
        logits[due], logits[rest] = full, part
        self._k = [kc.index_copy(0, due, k) for kc, k in zip(self._k, ks)]
        self._v = [vc.index_copy(0, due, v) for vc, v in zip(self._v, vs)]
        self._logits = self._logits.index_copy(0, due, full)
        self._tokens = self._tokens.index_copy(0, due, tokens[due])
        return logits

    def _block_round(self, tokens: Tensor, rows: Optional[Tensor] = None) -> Tensor:
        """One round of prefix / dual caching (Fast-dLLM): recompute ``[start, L)`` or ``[start, end)``
        (dual-prompt: and ``[0, prompt)``). ``rows``: the batch rows ``tokens`` holds."""
        start, end = self._block
        if self.mode == "dual-prompt" and min(self._anchor, start) > 0:
            return self._anchored_round(tokens, min(self._anchor, start), start, end, rows)
        stop = tokens.shape[1] if self.mode == "prefix" else end
        ks, vs, old = self._cached(rows)

        def hook(layer: int, k: Tensor, v: Tensor):
            kc, vc = ks[layer], vs[layer]
            return (torch.cat([kc[:, :, :start], k, kc[:, :, stop:]], dim=2),
                    torch.cat([vc[:, :, :start], v, vc[:, :, stop:]], dim=2))

        positions = torch.arange(start, stop, device=tokens.device)
        fresh = self._forward(tokens[:, start:stop], positions=positions, kv_hook=hook, rows=rows)
        self.stats["query_positions"] += tokens.shape[0] * (stop - start)
        return torch.cat([old[:, :start], fresh, old[:, stop:]], dim=1)

    def _cached(self, rows: Optional[Tensor]):
        if rows is None:
            return self._k, self._v, self._logits
        return [k[rows] for k in self._k], [v[rows] for v in self._v], self._logits[rows]

    def _anchored_round(self, tokens: Tensor, p: int, start: int, end: int,
                        rows: Optional[Tensor] = None) -> Tensor:
        """dual-prompt: recompute ``[0, p)`` and ``[w, end)`` with ``w = max(p, start - window)``;
        the rest is read from the cache."""
        ks, vs, old = self._cached(rows)
        ws = max(p, start - self.window)

        def hook(layer: int, k: Tensor, v: Tensor):
            kc, vc = ks[layer], vs[layer]
            return (torch.cat([k[:, :, :p], kc[:, :, p:ws], k[:, :, p:], kc[:, :, end:]], dim=2),
                    torch.cat([v[:, :, :p], vc[:, :, p:ws], v[:, :, p:], vc[:, :, end:]], dim=2))

        positions = torch.cat([torch.arange(p, device=tokens.device),
                               torch.arange(ws, end, device=tokens.device)])
        fresh = self._forward(torch.cat([tokens[:, :p], tokens[:, ws:end]], 1), positions=positions,
                              kv_hook=hook, rows=rows)
        self.stats["query_positions"] += tokens.shape[0] * (p + end - ws)
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

        fresh = self._forward(tokens.gather(1, sel), positions=sel, kv_hook=hook)
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
