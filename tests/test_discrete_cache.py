"""Key-value caches for bidirectional masked transformers (diffkit.discrete.cache).

Each cache's effect on the output is stated in the module docstring; these tests check every
statement on tiny random networks in float64:
"none" is the plain net; every mode is exact at a refresh; a one-layer net is exact at every round;
for deeper nets a cached round equals a forward pass whose cached positions' hidden states are
frozen at the pass that stored them, and it differs from the exact forward.
"""

from __future__ import annotations

import pytest
import torch

from diffkit.discrete.cache import MODES, KVCacheModel
from diffkit.nn import MaskedTransformer

V, MASK = 6, 6  # real tokens 0..5, mask id 6
P, BLOCK, NBLOCKS, PER_ROUND = 5, 6, 3, 2
L = P + BLOCK * NBLOCKS


def make_net(depth: int, seed: int = 0, dtype=torch.float64) -> MaskedTransformer:
    torch.manual_seed(seed)
    net = MaskedTransformer(vocab_size=V + 1, max_len=32, dim=32, depth=depth, heads=4, mask_id=MASK)
    # random weights with some spread, so that attention is far from uniform
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.3)
    return net.to(dtype).eval()


def start_tokens(batch: int = 3, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.full((batch, L), MASK, dtype=torch.long)
    x[:, :P] = torch.randint(0, V, (batch, P), generator=g)
    return x


def block_decode(model, net, x: torch.Tensor, reference=None):
    """Block decoding driven by the *exact* net (so cached and exact runs see the same tokens):
    blocks left to right, ``PER_ROUND`` most confident masked positions of the block per round.
    Yields ``(round_in_block, block, cached logits, exact logits, reference logits or None)``."""
    x = x.clone()
    with torch.no_grad():
        for b in range(NBLOCKS):
            s, e = P + b * BLOCK, P + (b + 1) * BLOCK
            if hasattr(model, "begin_block"):
                model.begin_block(x, s, e)
            if reference is not None:
                reference.begin_block(x, s, e)
            for r in range(BLOCK // PER_ROUND):
                got, exact = model(x), net(x)
                ref = reference(x) if reference is not None else None
                yield r, (s, e), x.clone(), got, exact, ref
                conf, pred = torch.softmax(exact, -1).max(-1)
                conf[:, :s] = -1
                conf[:, e:] = -1
                conf[x != MASK] = -1
                idx = conf.topk(PER_ROUND, dim=1).indices
                x.scatter_(1, idx, pred.gather(1, idx))


def real(logits):
    return logits[..., :V]  # drop the mask column (-inf everywhere)


def test_none_is_the_plain_net_exactly():
    net = make_net(3)
    model = KVCacheModel(net, "none")
    for _, _, _, got, exact, _ in block_decode(model, net, start_tokens()):
        assert torch.equal(got, exact)


@pytest.mark.parametrize("mode", MODES)
def test_exact_at_every_block_start(mode):
    """The first round of every block equals the uncached forward (prefix/dual refresh there;
    delayed refreshes every ``refresh_every`` calls, here once per block)."""
    net = make_net(3)
    model = KVCacheModel(net, mode, refresh_every=BLOCK // PER_ROUND if mode == "delayed" else None)
    firsts = [(got, exact) for r, _, _, got, exact, _ in block_decode(model, net, start_tokens()) if r == 0]
    assert len(firsts) == NBLOCKS
    for got, exact in firsts:
        torch.testing.assert_close(real(got), real(exact), rtol=0, atol=1e-12)


def test_float32_first_round_within_1e6():
    net = make_net(2, dtype=torch.float32)
    for mode in ("prefix", "dual"):
        model = KVCacheModel(net, mode)
        for r, _, _, got, exact, _ in block_decode(model, net, start_tokens()):
            assert got.dtype == torch.float32
            if r == 0:
                assert (real(got) - real(exact)).abs().max() < 1e-6


@pytest.mark.parametrize("mode", MODES)
def test_one_layer_net_is_exact_at_every_round(mode):
    """Layer-1 keys and values depend only on a token and its position; block decoding never
    changes a cached token, so with one layer every cache is exact at every round (at the
    positions decoding reads: masked positions of the current block)."""
    net = make_net(1)
    model = KVCacheModel(net, mode)
    for _, (s, e), x, got, exact, _ in block_decode(model, net, start_tokens()):
        read = (x == MASK)
        read[:, :s] = False
        read[:, e:] = False
        torch.testing.assert_close(real(got)[read], real(exact)[read], rtol=0, atol=1e-12)


class FrozenContextReference:
    """The statement of what prefix/dual/delayed compute, written plainly: a full forward pass in
    which, at every layer, the hidden states of cached positions are replaced by the ones stored
    when they were cached. prefix/dual: positions outside [start, L) / [start, end) are frozen at
    the block's first pass. delayed: a non-mask position is frozen at the first pass in which it
    held its current token (one round after it was decoded)."""

    def __init__(self, net, mode):
        self.net, self.mode = net, mode
        self.stored, self.block, self.fresh_pass, self.tokens = None, None, True, None
        self.tokens_at_store = None

    def begin_block(self, x, s, e):
        if self.block is None:
            self.anchor = s  # the prompt: positions before the decode's first block
        self.block, self.fresh_pass = (s, e), True

    def __call__(self, x):
        net = self.net
        if self.mode == "dual-prompt" and self.tokens_at_store is not None and not self.fresh_pass:
            s, e = self.block
            committed = ((self.tokens_at_store == MASK) & (x != MASK)).sum(1).max()
            self.fresh_pass = bool(committed >= (e - s) // 2)
        if self.mode == "delayed":
            frozen = torch.zeros_like(x, dtype=torch.bool) if self.tokens is None else \
                (self.tokens == x) & (x != MASK)
        else:
            s, e = self.block
            stop = x.shape[1] if self.mode == "prefix" else e
            frozen = torch.ones_like(x, dtype=torch.bool)
            frozen[:, s:stop] = False
            if self.mode == "dual-prompt":
                frozen[:, :self.anchor] = False
            if self.fresh_pass:
                frozen[:] = False
        h = net.embed(x)
        hs = []
        for i, block in enumerate(net.blocks):
            if self.stored is not None:
                h = torch.where(frozen[..., None], self.stored[i], h)
            hs.append(h)
            h = block(h)
        if self.mode == "delayed" or self.fresh_pass:
            self.stored, self.tokens_at_store = hs, x.clone()
        self.tokens, self.fresh_pass = x.clone(), False
        return net.logits(h)


@pytest.mark.parametrize("mode", ["prefix", "dual", "delayed", "dual-prompt"])
def test_cached_round_equals_frozen_context_forward(mode):
    net = make_net(3)
    model = KVCacheModel(net, mode)
    ref = FrozenContextReference(net, mode)
    worst = 0.0
    for _r, (s, e), x, got, exact, want in block_decode(model, net, start_tokens(), reference=ref):
        read = (x == MASK)
        read[:, :s] = False
        read[:, e:] = False
        torch.testing.assert_close(real(got)[read], real(want)[read], rtol=0, atol=1e-10)
        worst = max(worst, (real(got) - real(exact))[read].abs().max().item())
    # ... and it is an approximation: a depth-3 net's cached logits move away from the exact ones
    assert worst > 1e-4


def test_dual_computes_only_the_block_and_prefix_the_rest():
    net = make_net(2)
    x = start_tokens(batch=2)
    counts = {}
    for mode in MODES:
        model = KVCacheModel(net, mode)
        for _ in block_decode(model, net, x):
            pass
        counts[mode] = model.stats
    rounds = NBLOCKS * (BLOCK // PER_ROUND)
    assert counts["none"]["query_positions"] == 2 * L * rounds
    # refresh at each block start (full L) + the other rounds on [s, L) resp. [s, e)
    per_block_prefix = [L + (BLOCK // PER_ROUND - 1) * (L - (P + b * BLOCK)) for b in range(NBLOCKS)]
    assert counts["prefix"]["query_positions"] == 2 * sum(per_block_prefix)
    assert counts["dual"]["query_positions"] == 2 * NBLOCKS * (L + (BLOCK // PER_ROUND - 1) * BLOCK)
    assert counts["dual"]["full"] == counts["prefix"]["full"] == NBLOCKS
    assert counts["delayed"]["full"] == 1
    # dual-prompt: rounds of 2 commits in blocks of 6, a full forward once 3 were committed: full,
    # prompt + block, full
    assert counts["dual-prompt"]["query_positions"] == 2 * NBLOCKS * (2 * L + (P + BLOCK))
    assert counts["dual-prompt"]["full"] == 2 * NBLOCKS
    assert counts["delayed"]["query_positions"] < counts["none"]["query_positions"]


@pytest.mark.parametrize("mode", MODES)
def test_decode_runs_with_every_cache_and_one_layer_matches_exactly(mode):
    """Through ``discrete.decode``: with one layer (exact caches) the decoded tokens equal those of
    the plain net; the cache is refreshed once per block via ``begin_block``."""
    from diffkit.discrete import decode

    net = make_net(1)
    prompt = start_tokens(batch=3)[:, :P]
    kw = dict(gen_length=BLOCK * NBLOCKS, mask_id=MASK, steps=NBLOCKS * BLOCK // PER_ROUND,
              block_length=BLOCK, strategy="confidence")
    plain = decode(net, prompt, **kw)
    model = KVCacheModel(net, mode)
    cached = decode(model, prompt, **kw)
    assert torch.equal(cached.tokens, plain.tokens)
    if mode in ("prefix", "dual"):
        assert model.stats["full"] == NBLOCKS
    if mode == "dual-prompt":  # block start, and once half a block was committed
        assert model.stats["full"] == 2 * NBLOCKS
    # a second decode with the same wrapper starts afresh (the cache is reset at its first block)
    again = decode(model, prompt, **kw)
    assert torch.equal(again.tokens, plain.tokens)


def test_bad_arguments():
    net = make_net(1)
    with pytest.raises(ValueError, match="mode"):
        KVCacheModel(net, "suffix")
    with pytest.raises(ValueError, match="refresh_every"):
        KVCacheModel(net, "delayed", refresh_every=0)
    model = KVCacheModel(net, "dual")
    with pytest.raises(ValueError, match="start"):
        model.begin_block(start_tokens(), 10, 5)


def test_dual_prompt_is_exact_for_a_single_block():
    """One block after the prompt: dual-prompt recomputes the prompt and the block every round,
    so nothing is cached and every logit equals the exact forward (to rounding), whatever its
    refreshes."""
    from diffkit.discrete import decode

    net = make_net(3)
    prompt = start_tokens(batch=3)[:, :P]
    model = KVCacheModel(net, "dual-prompt")
    x = torch.cat([prompt, torch.full((3, BLOCK), MASK)], 1)
    model.begin_block(x, P, P + BLOCK)
    model(x)
    x[:, P] = 1
    torch.testing.assert_close(real(model(x)), real(net(x)), rtol=0, atol=1e-10)
    kw = dict(gen_length=BLOCK, mask_id=MASK, steps=BLOCK, strategy="confidence")
    assert torch.equal(decode(KVCacheModel(net, "dual-prompt"), prompt, **kw).tokens,
                       decode(net, prompt, **kw).tokens)


@pytest.mark.parametrize("mode", [m for m in MODES if m != "none"])
@pytest.mark.parametrize("strategy", ["draft-verify", "wino"])
def test_cache_steps_aside_for_rules_that_evaluate_other_sequences(mode, strategy):
    """draft-verify and wino evaluate drafted or leave-one-out copies, not the batch's rows: after
    begin_decode(cacheable=False) every call is the exact forward, even when the same wrapper has
    just cached a decode of the same shape."""
    from diffkit.discrete import decode

    net = make_net(2)
    prompts = start_tokens(batch=2)[:, :P]
    model = KVCacheModel(net, mode)
    kw = dict(block_length=BLOCK // 2, **({"max_rounds": 4} if strategy == "wino" else {}))
    decode(model, prompts, BLOCK, MASK, block_length=BLOCK // 2, strategy="confidence")
    with torch.no_grad():
        got = decode(model, prompts, BLOCK, MASK, strategy=strategy, **kw)
        want = decode(net, prompts, BLOCK, MASK, strategy=strategy, **kw)
    assert torch.equal(got.tokens, want.tokens) and got.nfe == want.nfe


def test_dual_prompt_refreshes_each_row_on_its_own_commits():
    """A row that reached refresh_after commits is run in full while the others stay cached: the
    refreshed row's logits are the exact forward, the cached row's equal those of a wrapper that
    decodes that row alone."""
    net = make_net(2)
    x = start_tokens(batch=2)
    model, alone = KVCacheModel(net, "dual-prompt", refresh_after=2), KVCacheModel(net, "dual-prompt", refresh_after=2)
    for m, t in ((model, x), (alone, x[1:])):
        m.begin_block(t, P, P + BLOCK)
        m(t)
    y = x.clone()
    y[0, P:P + 2] = 1  # row 0 commits two tokens, row 1 one
    y[1, P] = 2
    got = model(y)
    with torch.no_grad():
        torch.testing.assert_close(got[0], net(y[:1])[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(got[1], alone(y[1:])[0], rtol=0, atol=1e-12)
    assert model.stats["full"] == 2
