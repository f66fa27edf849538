"""Left-padded prompts of different lengths: every row of a batch decodes to the tokens it gets
alone, for every registered strategy, on the exact oracle and on the tiny transformer with every
cache; the pad-aware models give a padded row the logits of the row without padding."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffkit.discrete import CACHE_MODES, HMMLanguage, KVCacheModel, decode, strategies
from diffkit.discrete import strategy_records as records
from diffkit.discrete.cache import masked_forward
from diffkit.discrete.padding import leading_pads, real_positions
from diffkit.nn import MaskedTransformer

pytestmark = pytest.mark.usefixtures("one_thread")

LANG = HMMLanguage.default()  # V = 3, mask 3
PAD = 7  # outside both vocabularies
T_MASK = 5  # the transformer's mask: tokens 0..4 real


def tiny_net(seed=0):
    """A random two-layer net whose head is scaled up, so its confidences spread over (0, 1) and
    threshold rules commit different numbers of tokens per row (exercising per-row refreshes)."""
    torch.manual_seed(seed)
    net = MaskedTransformer(vocab_size=6, dim=16, depth=2, heads=2, max_len=24, mask_id=T_MASK).double().eval()
    with torch.no_grad():
        net.head.weight.mul_(40.0)
    return net


NET = tiny_net()


def left_pad(rows):
    """Rows of different lengths -> ``[batch, max_len]`` left-padded with ``PAD``."""
    width = max(len(r) for r in rows)
    return torch.tensor([[PAD] * (width - len(r)) + list(r) for r in rows], dtype=torch.long)


def models():
    """(name, mask_id, vocab, batch model with pad_id, factory of the plain model for one row)."""
    yield "oracle", LANG.mask_id, LANG.vocab_size, LANG.as_model(pad_id=PAD), LANG.as_model
    for mode in CACHE_MODES:
        yield (f"transformer/{mode}", T_MASK, 5, KVCacheModel(NET, mode, pad_id=PAD),
               lambda mode=mode: KVCacheModel(NET, mode))


def test_padding_is_the_leading_run_and_positions_start_at_the_first_real_token():
    x = torch.tensor([[PAD, PAD, 1, PAD, 2], [0, PAD, 1, 1, 1], [PAD] * 5])
    pads = leading_pads(x, PAD)
    assert pads.tolist() == [[True, True, False, False, False], [False] * 5, [True] * 5]
    assert real_positions(pads).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4], [0] * 5]
    assert not leading_pads(x, None).any()


def test_masked_forward_is_the_network_when_nothing_is_left_out():
    x = torch.tensor([[0, 1, 5, 5, 2, 5], [4, 4, 3, 5, 5, 5]])
    pos = torch.arange(6).expand(2, -1)
    got = masked_forward(NET, x, pos, None, torch.ones(2, 6, dtype=torch.bool))
    torch.testing.assert_close(got, NET(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", [m[0] for m in models()])
def test_a_padded_row_gets_the_logits_of_the_row_alone(name):
    _, mask, _, padded_model, plain = next(m for m in models() if m[0] == name)
    row = torch.tensor([[1, 0, mask, 2, mask, mask]])
    padded = torch.cat([torch.full((1, 3), PAD), row], 1)
    got = padded_model(padded)[:, 3:]
    want = plain()(row)
    finite = torch.isfinite(want)
    assert torch.equal(finite, torch.isfinite(got))
    torch.testing.assert_close(got[finite], want[finite], rtol=0, atol=1e-12)


def _kwargs(strategy, temperature, cfg_scale):
    rec = records.info(strategy)
    kw = dict(strategy=strategy, block_length=4, threshold=0.5, cfg_scale=cfg_scale,
              temperature=0.0 if strategy == "draft-verify" else temperature)
    if rec.fixed_schedule:
        kw["steps"] = 4
    return kw


@settings(max_examples=4, deadline=None)
@given(lengths=st.lists(st.integers(0, 4), min_size=2, max_size=3).filter(lambda v: len(set(v)) > 1),
       seed=st.integers(0, 10 ** 6), temperature=st.sampled_from([0.0, 0.8]),
       cfg_scale=st.sampled_from([0.0, 1.5]))
def test_left_padded_rows_decode_as_they_do_alone(lengths, seed, temperature, cfg_scale):
    """A batch of prompts of different lengths, left-padded with ``pad_id``, gives each row exactly
    the tokens it gets when decoded alone: every registered strategy, the oracle and the tiny
    transformer under every cache, greedy and sampled (one generator per row), with and without
    guidance."""
    g = torch.Generator().manual_seed(seed)
    for name, mask, vocab, padded_model, plain in models():
        rows = [torch.randint(vocab, (n,), generator=g).tolist() for n in lengths]
        batch = left_pad(rows)
        for strategy in strategies():
            kw = _kwargs(strategy, temperature, cfg_scale)
            gens = [torch.Generator().manual_seed(seed + j) for j in range(len(rows))]
            out = decode(padded_model, batch, 8, mask, generator=gens, **kw)
            width = batch.shape[1]
            assert (out.tokens[:, :width] == batch).all()
            assert ((out.tokens[:, width:] >= 0) & (out.tokens[:, width:] < vocab)).all()
            for j, row in enumerate(rows):
                alone = decode(plain(), torch.tensor([row], dtype=torch.long).reshape(1, -1), 8, mask,
                               generator=[torch.Generator().manual_seed(seed + j)], **kw)
                assert torch.equal(out.tokens[j, width - len(row):], alone.tokens[0]), (name, strategy, j)


def test_decode_reads_pad_id_from_the_model_and_checks_it():
    batch = left_pad([[0, 1, 2], [2]])
    a = decode(LANG.as_model(pad_id=PAD), batch, 4, 3, steps=4)
    b = decode(LANG.as_model(pad_id=PAD), batch, 4, 3, steps=4, pad_id=PAD)
    assert torch.equal(a.tokens, b.tokens)
    with pytest.raises(ValueError, match="vocab_size"):
        decode(LANG.as_model(), batch, 4, 3, steps=4)  # the pads are not real tokens
    with pytest.raises(ValueError, match="pad_id"):
        decode(LANG.as_model(), batch, 4, 3, pad_id=3)
    with pytest.raises(ValueError, match="pad_id"):
        LANG.as_model(pad_id=3)
    with pytest.raises(ValueError, match="pad_id"):
        KVCacheModel(NET, "dual", pad_id=T_MASK)
    with pytest.raises(ValueError, match="one generator per row"):
        decode(LANG.as_model(pad_id=PAD), batch, 4, 3, generator=[torch.Generator()])
