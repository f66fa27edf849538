"""dLLM decoding: LLaDA's reference semantics, the parallel rules, draft-verify's losslessness."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffkit.discrete import HMMLanguage, decode, get_task, num_transfer_tokens, strategies
from diffkit.discrete.decode import select

pytestmark = pytest.mark.usefixtures("one_thread")


MASK = 5


class RandomModel:
    """A fixed random bidirectional 'network' over a vocabulary of 5 tokens + mask (id 5):
    embeddings, one context-mixing layer, a readout; the mask's logit is -inf."""

    def __init__(self, length, seed=0, vocab=5, dim=8):
        g = torch.Generator().manual_seed(seed)
        self.emb = torch.randn(vocab + 1, dim, generator=g, dtype=torch.float64)
        self.mix = torch.randn(length, length, generator=g, dtype=torch.float64) / length ** 0.5
        self.out = 2 * torch.randn(dim, vocab + 1, generator=g, dtype=torch.float64)
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        h = self.emb[x]
        h = h + torch.tanh(torch.einsum("ij,bjd->bid", self.mix[: x.shape[1], : x.shape[1]], h))
        logits = h @ self.out
        logits[..., MASK] = -float("inf")
        return logits


def reference_generate(model, prompt, steps, gen_length, block_length, mask_id):
    """LLaDA's low-confidence remasking at temperature 0, written from its description: blocks
    left to right; each block's masks split evenly over steps // num_blocks steps with the
    remainder to the earliest steps; commit the most probable predictions; positions beyond the
    current block excluded."""
    batch, plen = prompt.shape
    x = torch.full((batch, plen + gen_length), mask_id, dtype=torch.long)
    x[:, :plen] = prompt
    num_blocks = gen_length // block_length
    per_block = steps // num_blocks
    for nb in range(num_blocks):
        hi = plen + (nb + 1) * block_length
        n_mask = (x[:, hi - block_length: hi] == mask_id).sum(1).tolist()
        counts = [[n // per_block + (1 if s < n % per_block else 0) for s in range(per_block)]
                  for n in n_mask]
        for s in range(per_block):
            masked = x == mask_id
            logits = model(x)
            pred = logits.argmax(-1)
            p = torch.softmax(logits, -1).gather(-1, pred.unsqueeze(-1)).squeeze(-1)
            p[:, hi:] = -float("inf")
            conf = torch.where(masked, p, torch.tensor(-float("inf"), dtype=p.dtype))
            for j in range(batch):
                idx = torch.topk(conf[j], counts[j][s]).indices
                x[j, idx] = pred[j, idx]
    return x


def test_step_split_numbers():
    got = num_transfer_tokens(torch.tensor([10, 7, 3, 0]), 4)
    assert got.tolist() == [[3, 3, 2, 2], [2, 2, 2, 1], [1, 1, 1, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize("steps,gen_length,block_length", [(12, 12, 12), (5, 12, 12), (6, 12, 4),
                                                           (3, 12, 4), (9, 12, 4), (4, 16, 8)])
def test_confidence_reproduces_llada_reference(steps, gen_length, block_length):
    model = RandomModel(3 + gen_length, seed=steps + block_length)
    prompt = torch.randint(5, (4, 3), generator=torch.Generator().manual_seed(1))
    want = reference_generate(model, prompt, steps, gen_length, block_length, MASK)
    out = decode(model, prompt, gen_length, MASK, steps=steps, block_length=block_length)
    assert torch.equal(out.tokens, want)
    assert out.nfe == steps == out.rounds
    # each round commits the scheduled count, inside its block, and every position exactly once
    per_block = steps // (gen_length // block_length)
    sched = num_transfer_tokens(torch.tensor([block_length]), per_block)[0].tolist()
    seen = torch.zeros_like(out.tokens, dtype=torch.bool)
    for r, rnd in enumerate(out.history):
        assert rnd.committed.sum(1).tolist() == [sched[r % per_block]] * 4
        lo, hi = rnd.block
        assert not rnd.committed[:, :lo].any() and not rnd.committed[:, hi:].any()
        assert not (seen & rnd.committed).any()
        seen |= rnd.committed
    assert seen[:, 3:].all() and not seen[:, :3].any()


def test_more_steps_than_tokens_skips_empty_rounds():
    model = RandomModel(7, seed=3)
    prompt = torch.tensor([[1, 2, 3]])
    want = reference_generate(model, prompt, 8, 4, 4, MASK)
    out = decode(model, prompt, 4, MASK, steps=8)
    assert torch.equal(out.tokens, want) and out.nfe == 4


@pytest.mark.parametrize("strategy", strategies())
def test_every_strategy_fills_every_position(strategy):
    lang = HMMLanguage.random(3, 5, torch.Generator().manual_seed(2))
    model = lang.as_model()
    prompt = lang.sample(3, 2, torch.Generator().manual_seed(3))
    kw = {} if strategy == "draft-verify" else {"temperature": 1.0}
    out = decode(model, prompt, 8, lang.mask_id, steps=4, strategy=strategy, block_length=4,
                 generator=torch.Generator().manual_seed(4), **kw)
    assert out.tokens.shape == (3, 10) and (out.tokens < 5).all()
    assert torch.equal(out.tokens[:, :2], prompt)
    assert model.calls == out.nfe
    if strategy != "draft-verify":
        assert out.nfe == out.rounds
        again = decode(lang.as_model(), prompt, 8, lang.mask_id, steps=4, strategy=strategy,
                       block_length=4, generator=torch.Generator().manual_seed(4), **kw)
        assert torch.equal(again.tokens, out.tokens)  # same seed, same samples
    # every position ends committed once more than it was taken back (remasking rules revoke)
    total = sum(r.committed.long() - (0 if r.revoked is None else r.revoked.long())
                for r in out.history)
    assert (total[:, 2:] == 1).all() and (total[:, :2] == 0).all()


def test_threshold_rule():
    lang = HMMLanguage.random(3, 5, torch.Generator().manual_seed(5))
    prompt = lang.sample(2, 2, torch.Generator().manual_seed(6))
    one = decode(lang.as_model(), prompt, 8, lang.mask_id, steps=8, block_length=4)
    # threshold 1: only the most confident position per round (no oracle probability is 1)
    t1 = decode(lang.as_model(), prompt, 8, lang.mask_id, strategy="threshold", threshold=1.0,
                block_length=4)
    assert torch.equal(t1.tokens, one.tokens) and t1.nfe == 8
    # a tiny threshold commits each block in one round
    t0 = decode(lang.as_model(), prompt, 8, lang.mask_id, strategy="threshold", threshold=1e-9,
                block_length=4)
    assert t0.nfe == 2
    # every round: committed = argmax-confidence candidate plus candidates with conf >= 0.5
    out = decode(lang.as_model(), prompt, 8, lang.mask_id, strategy="threshold", threshold=0.5)
    for rnd in out.history:
        cand = ~torch.isnan(rnd.confidence)
        c = torch.where(cand, rnd.confidence, -1.0)
        want = (c >= 0.5) | (c == c.max(1, keepdim=True).values)
        assert torch.equal(rnd.committed, want & cand)


def test_factor_margin_entropy_rules_on_hand_made_probabilities():
    conf = torch.tensor([[0.8, 0.99, 0.3, 0.9]], dtype=torch.float64)
    probs = torch.stack([conf, 1 - conf], -1)
    tokens = torch.zeros(1, 4, dtype=torch.long)
    cand = torch.ones(1, 4, dtype=torch.bool)
    k = torch.tensor([1])
    # sorted c = .99 .9 .8 .3: (n+1)(1-c_n) = .02 .3 .8 3.5 -> n = 3 below factor 1
    got = select("factor", probs, tokens, cand, k, options={"factor": 1.0})
    assert got.tolist() == [[True, True, False, True]]
    got = select("factor", probs, tokens, cand, k, options={"factor": 0.5})
    assert got.tolist() == [[False, True, False, True]]
    got = select("factor", probs, tokens, cand, k, options={"factor": 1e-6})
    assert got.tolist() == [[False, True, False, False]]  # at least one
    p = torch.tensor([[[0.5, 0.5, 0.0], [0.6, 0.2, 0.2], [0.45, 0.1, 0.45], [0.4, 0.3, 0.3]]],
                     dtype=torch.float64)
    tok = p.argmax(-1)
    cand3 = torch.ones(1, 4, dtype=torch.bool)
    # margins 0, .4, 0, .1 -> best two: positions 1 and 3
    assert select("margin", p, tok, cand3, torch.tensor([2])).tolist() == [[False, True, False, True]]
    # entropies: log 2 = .693, .950, .948, 1.089 -> lowest two: positions 0 and 2
    assert select("entropy", p, tok, cand3, torch.tensor([2])).tolist() == [[True, False, True, False]]


def test_prophet_extremes():
    lang = HMMLanguage.random(3, 5, torch.Generator().manual_seed(7))
    prompt = lang.sample(2, 2, torch.Generator().manual_seed(8))
    base = decode(lang.as_model(), prompt, 8, lang.mask_id, steps=8, block_length=4)
    never = decode(lang.as_model(), prompt, 8, lang.mask_id, steps=8, block_length=4,
                   strategy="prophet", gap=1e9)
    assert torch.equal(never.tokens, base.tokens) and never.nfe == 8
    always = decode(lang.as_model(), prompt, 8, lang.mask_id, steps=8, block_length=4,
                    strategy="prophet", gap=0.0)
    assert always.nfe == 1 and always.history[0].committed[:, 2:].all()
    # the early commit takes the greedy tokens of that round
    first = lang.as_model()(torch.cat([prompt, torch.full((2, 8), lang.mask_id)], 1))
    assert torch.equal(always.tokens[:, 2:], first[:, 2:].argmax(-1))


@pytest.mark.parametrize("seed,block_length,draft", [(0, 12, 4), (1, 4, 3), (2, 6, 12), (3, 12, 1)])
def test_draft_verify_is_lossless(seed, block_length, draft):
    model = RandomModel(14, seed=seed)
    prompt = torch.randint(5, (3, 2), generator=torch.Generator().manual_seed(seed))
    want = decode(model, prompt, 12, MASK, steps=12, block_length=block_length)
    got = decode(model, prompt, 12, MASK, strategy="draft-verify", block_length=block_length,
                 draft=draft)
    assert torch.equal(got.tokens, want.tokens)
    assert got.nfe <= 13


def test_draft_verify_saves_calls_on_an_oracle():
    task = get_task("copy", length=8)
    prompts, _ = task.sample(4, torch.Generator().manual_seed(0))
    want = decode(task.as_model(), prompts, 8, task.mask_id, steps=8)
    got = decode(task.as_model(), prompts, 8, task.mask_id, strategy="draft-verify", draft=8)
    assert torch.equal(got.tokens, want.tokens) and (task.score(prompts, got.tokens) == 1).all()
    assert got.nfe == 2 < want.nfe == 8  # draft of 8 verified in one call


def test_cache_protocol_begin_block():
    calls = []

    class Cached(RandomModel):
        def begin_block(self, tokens, start, end):
            calls.append((start, end, int((tokens[:, start:end] == MASK).sum())))

    model = Cached(15, seed=4)
    decode(model, torch.tensor([[1, 2, 3]]), 12, MASK, steps=6, block_length=4)
    assert calls == [(3, 7, 4), (7, 11, 4), (11, 15, 4)]


def test_bad_input():
    model = RandomModel(10)
    prompt = torch.tensor([[1, 2]])
    with pytest.raises(ValueError, match="mask"):
        decode(model, torch.tensor([[1, MASK]]), 8, MASK)
    with pytest.raises(ValueError, match="divisible"):
        decode(model, prompt, 8, MASK, block_length=3)
    with pytest.raises(ValueError, match="shape"):
        decode(lambda x: torch.zeros(x.shape[0], x.shape[1]), prompt, 8, MASK)
    with pytest.raises(ValueError, match="shape"):
        decode(lambda x: torch.zeros(x.shape[0], x.shape[1] + 1, 6), prompt, 8, MASK)
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="threshold"):
            decode(model, prompt, 8, MASK, strategy="threshold", threshold=bad)
    with pytest.raises(ValueError, match="confidence"):
        decode(model, prompt, 8, MASK, strategy="greedy")
    with pytest.raises(ValueError, match="multiple"):
        decode(model, prompt, 8, MASK, steps=3, block_length=4)
    with pytest.raises(ValueError, match="option"):
        decode(model, prompt, 8, MASK, strategy="confidence", factor=2.0)
    with pytest.raises(ValueError, match="temperature"):
        decode(model, prompt, 8, MASK, strategy="draft-verify", temperature=1.0)


@settings(max_examples=60, deadline=None)
@given(masked=st.lists(st.integers(0, 300), min_size=1, max_size=5), steps=st.integers(1, 40))
def test_schedule_properties(masked, steps):
    """LLaDA's split: sums to the masked count, differs by at most one between rounds, and
    the larger counts come first."""
    got = num_transfer_tokens(torch.tensor(masked), steps)
    assert got.shape == (len(masked), steps)
    assert got.sum(1).tolist() == masked
    assert ((got.max(1).values - got.min(1).values) <= 1).all()
    assert (got[:, :-1] >= got[:, 1:]).all()
