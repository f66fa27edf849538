"""The Hugging Face adapter (diffkit.discrete.hf) on tiny randomly initialised transformers models
built from a config on the spot (nothing is downloaded)."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from diffkit.discrete import decode  # noqa: E402
from diffkit.discrete.hf import HFModel, shift_right  # noqa: E402

VOCAB, MASK, PAD = 12, 11, 0  # ids 1..10 real tokens


@pytest.fixture(scope="module")
def bert():
    """A 2-layer bidirectional BertForMaskedLM (LLaDA-like: logits at i predict token i)."""
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=64, pad_token_id=PAD)
    return transformers.BertForMaskedLM(cfg).double().eval()


@pytest.fixture(scope="module")
def qwen2():
    """A 2-layer Qwen2ForCausalLM (Dream's architecture family: next-token head, shifted logits)."""
    torch.manual_seed(1)
    cfg = transformers.Qwen2Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                                   pad_token_id=PAD)
    return transformers.Qwen2ForCausalLM(cfg).double().eval()


def prompts(batch=3, length=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, MASK, (batch, length), generator=g)


def test_adapter_returns_model_logits(bert):
    x = torch.cat([prompts(), torch.full((3, 4), MASK)], 1)
    with torch.no_grad():
        expect = bert(x).logits
    got = HFModel(bert, MASK)(x)
    assert torch.equal(got, expect)


def test_shift_is_dreams_one_position_shift(qwen2):
    """With shift_logits=True the logits at position i are the model's output at i - 1
    (position 0 keeps its own)."""
    x = torch.cat([prompts(), torch.full((3, 4), MASK)], 1)
    with torch.no_grad():
        raw = qwen2(x).logits
    got = HFModel(qwen2, MASK, shift_logits=True)(x)
    assert torch.equal(got[:, 1:], raw[:, :-1])
    assert torch.equal(got[:, 0], raw[:, 0])
    assert torch.equal(shift_right(raw), got)
    # causal model + shift: position i's logits depend only on tokens before i
    y = x.clone()
    y[:, 6] = (y[:, 6] % 10) + 1
    changed = (HFModel(qwen2, MASK, shift_logits=True)(y) - got).abs().amax(-1)[0]
    assert changed[:7].max() == 0 and changed[7:].min() > 0


@pytest.mark.parametrize("which,shift", [("bert", False), ("qwen2", True)])
@pytest.mark.parametrize("strategy", ["confidence", "threshold"])
def test_decode_on_adapter_equals_handwritten_callable(request, which, shift, strategy):
    net = request.getfixturevalue(which)

    def by_hand(tokens):
        with torch.no_grad():
            logits = net(tokens).logits
        if shift:
            logits = torch.cat([logits[:, :1], logits[:, :-1]], 1)
        return logits

    kw = dict(gen_length=8, mask_id=MASK, steps=8, block_length=4, strategy=strategy)
    if strategy == "threshold":
        kw["threshold"] = 0.15
    a = decode(HFModel(net, MASK, shift_logits=shift), prompts(), **kw)
    b = decode(by_hand, prompts(), **kw)
    assert torch.equal(a.tokens, b.tokens) and a.nfe == b.nfe
    assert ((a.tokens[:, 5:] >= 0) & (a.tokens[:, 5:] < VOCAB) & (a.tokens[:, 5:] != MASK)).all()


@pytest.mark.parametrize("which", ["bert", "qwen2"])
def test_left_padding_gives_the_unpadded_logits(request, which):
    """A left-padded row, with the attention mask from pad_id and position ids counted from the
    first real token, gets the logits of the same row without padding (float64)."""
    net = request.getfixturevalue(which)
    x = torch.cat([prompts(batch=1), torch.full((1, 4), MASK)], 1)  # [1, 9]
    padded = torch.cat([torch.full((1, 3), PAD), x], 1)  # [1, 12]
    alone = HFModel(net, MASK, pad_id=PAD)(x)
    for model in (HFModel(net, MASK, pad_id=PAD),
                  HFModel(net, MASK, attention_mask=torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1]]))):
        got = model(padded)[:, 3:]
        torch.testing.assert_close(got, alone, rtol=0, atol=1e-12)
    # without the mask the pads change the answer: the mask is doing the work
    assert (HFModel(net, MASK)(padded)[:, 3:] - alone).abs().max() > 1e-6


def test_decode_batch_with_left_padded_prompts(bert):
    """Decoding a batch of prompts of different lengths, left-padded, gives each row the tokens
    it gets when decoded alone."""
    short, long = prompts(batch=1, length=3, seed=1), prompts(batch=1, length=5, seed=2)
    batch = torch.cat([torch.cat([torch.full((1, 2), PAD), short], 1), long], 0)
    kw = dict(gen_length=6, mask_id=MASK, steps=6, block_length=6, strategy="confidence")
    out = decode(HFModel(bert, MASK, pad_id=PAD), batch, **kw)
    alone_short = decode(HFModel(bert, MASK), short, **kw)
    alone_long = decode(HFModel(bert, MASK), long, **kw)
    assert torch.equal(out.tokens[0, 2:], alone_short.tokens[0])
    assert torch.equal(out.tokens[1], alone_long.tokens[0])


def test_dream_style_4d_mask_and_position_ids():
    """mask_format="4d" passes Dream's [batch, 1, L, L] mask (real query and real key) and position
    ids counted from the first real token."""
    seen = {}

    class Recorder(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None, position_ids=None):
            seen.update(mask=attention_mask, pos=position_ids)
            return torch.zeros(*input_ids.shape, VOCAB)

    x = torch.tensor([[PAD, PAD, 3, 4, MASK], [5, 6, 7, 8, MASK]])
    HFModel(Recorder(), MASK, pad_id=PAD, mask_format="4d")(x)
    real = x != PAD
    assert seen["mask"].shape == (2, 1, 5, 5) and seen["mask"].dtype == torch.bool
    for b in range(2):
        for i in range(5):
            for j in range(5):
                assert bool(seen["mask"][b, 0, i, j]) == bool(real[b, i] and real[b, j])
    assert seen["pos"].tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]
    seen.clear()
    HFModel(Recorder(), MASK)(x)  # no padding information: no mask, no position ids
    assert seen["mask"] is None and seen["pos"] is None


def test_bad_arguments(bert):
    x = torch.full((2, 5), MASK)
    with pytest.raises(ValueError, match="either"):
        HFModel(bert, MASK, pad_id=PAD, attention_mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="pad_id"):
        HFModel(bert, MASK, pad_id=MASK)
    with pytest.raises(ValueError, match="does not fit"):
        HFModel(bert, MASK, attention_mask=torch.ones(3, 3))(x)
    with pytest.raises(ValueError, match="mask_id"):
        HFModel(bert, VOCAB + 5)(x)
    with pytest.raises(ValueError, match="shape"):
        HFModel(lambda t: torch.zeros(2, 4, VOCAB), MASK)(x)
    with pytest.raises(ValueError, match="mask_format"):
        HFModel(bert, MASK, mask_format="3d")
