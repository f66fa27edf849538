"""Small networks (diffkit.nn) and the training loop / checkpoints (diffkit.train)."""

from __future__ import annotations

import math

import pytest
import torch

from diffkit.nn import MaskedTransformer, TimeMLP, sinusoidal_embedding
from diffkit.train import EMA, load_checkpoint, lr_at, save_checkpoint, train


def test_sinusoidal_embedding_values():
    t = torch.tensor([0.0, 0.25], dtype=torch.float64)
    e = sinusoidal_embedding(t, 4, max_period=100.0, scale=1.0)
    # frequencies 1 and 100**(-1/2) = 0.1: [cos(w t), cos(...), sin(...), sin(...)]
    expect = torch.tensor([[1, 1, 0, 0], [math.cos(0.25), math.cos(0.025), math.sin(0.25), math.sin(0.025)]],
                          dtype=torch.float64)
    torch.testing.assert_close(e, expect, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_embedding(t, 5)


def test_time_mlp_shapes_and_time_broadcast():
    torch.manual_seed(0)
    net = TimeMLP(3, hidden=32, depth=2).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    out_scalar = net(x, 0.3)
    out_batch = net(x, torch.full((5,), 0.3, dtype=torch.float64))
    assert out_scalar.shape == (5, 3) and out_scalar.dtype == torch.float64
    torch.testing.assert_close(out_scalar, out_batch, rtol=0, atol=1e-14)
    # rows are independent: row 2 with its own t equals the batched result
    ts = torch.rand(5, dtype=torch.float64)
    torch.testing.assert_close(net(x, ts)[2:3], net(x[2:3], ts[2:3]), rtol=0, atol=1e-14)
    assert not torch.allclose(net(x, 0.1), net(x, 0.9))  # t matters
    with pytest.raises(ValueError, match="shape"):
        net(torch.randn(5, 4, dtype=torch.float64), 0.3)
    with pytest.raises(ValueError, match="t must be"):
        net(x, torch.rand(4, dtype=torch.float64))


def test_masked_transformer_is_permutation_equivariant_up_to_positions():
    """Attention is bidirectional and order enters only through position embeddings: permuting
    the sequence together with its positions permutes the logits (no causal mask)."""
    torch.manual_seed(0)
    net = MaskedTransformer(vocab_size=7, max_len=12, dim=16, depth=2, heads=2, mask_id=6).double()
    x = torch.randint(0, 7, (3, 12))
    full = net(x)
    perm = torch.randperm(12)
    permuted = net(x[:, perm], positions=perm)
    torch.testing.assert_close(permuted[..., :6], full[:, perm, :6], rtol=0, atol=1e-12)
    # bidirectional: changing the last token changes the first position's logits
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % 6
    assert (net(y)[:, 0, :6] - full[:, 0, :6]).abs().max() > 1e-6


def test_masked_transformer_never_predicts_mask():
    net = MaskedTransformer(vocab_size=5, max_len=8, dim=16, depth=1, heads=4, mask_id=4)
    logits = net(torch.randint(0, 5, (2, 8)))
    assert logits.shape == (2, 8, 5)
    assert torch.isneginf(logits[..., 4]).all()
    assert torch.softmax(logits, -1)[..., 4].max() == 0
    assert torch.isfinite(logits[..., :4]).all()
    with pytest.raises(ValueError, match="max_len"):
        net(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="mask_id"):
        MaskedTransformer(vocab_size=5, max_len=8, mask_id=5)


def test_lr_schedule():
    assert lr_at(0, 100, 1.0, warmup=10) == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, warmup=10) == pytest.approx(1.0)
    assert lr_at(10, 100, 1.0, warmup=10) == pytest.approx(1.0)
    assert lr_at(100, 100, 1.0, warmup=10, min_ratio=0.1) == pytest.approx(0.1)
    assert lr_at(55, 100, 1.0, warmup=10, min_ratio=0.0) == pytest.approx(0.5)  # cosine midpoint


def test_ema_is_exponential_average():
    lin = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.0)
    ema = EMA(lin, decay=0.5)
    for w in (1.0, 1.0, 1.0):
        with torch.no_grad():
            lin.weight.fill_(w)
        ema.update(lin)
    # 0 -> 0.5 -> 0.75 -> 0.875
    assert ema.module.weight.item() == pytest.approx(0.875)
    with pytest.raises(ValueError):
        EMA(lin, decay=1.0)


def test_train_fits_least_squares_and_checkpoint_roundtrip(tmp_path):
    """Training a linear model on y = 2x - 1 with the loop recovers the coefficients; the EMA
    and the saved/loaded checkpoint agree with the trained weights."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Linear(1, 1)

    def loss_fn(m):
        x = torch.randn(64, 1, generator=gen)
        return ((m(x) - (2 * x - 1)) ** 2).mean()

    res = train(model, loss_fn, 400, lr=0.05, ema_decay=0.9, progress=False, log_every=7)
    assert len(res.losses) == 400 and res.losses[-1] < 1e-4
    assert model.weight.item() == pytest.approx(2.0, abs=1e-2)
    assert model.bias.item() == pytest.approx(-1.0, abs=1e-2)
    assert res.ema.weight.item() == pytest.approx(2.0, abs=2e-2)
    save_checkpoint(tmp_path / "lin", model, {"in_features": 1, "out_features": 1}, {"note": "x"})
    loaded, info = load_checkpoint(tmp_path / "lin.safetensors", lambda c: torch.nn.Linear(**c))
    assert info["config"] == {"in_features": 1, "out_features": 1} and info["metadata"] == {"note": "x"}
    assert torch.equal(loaded.weight, model.weight) and torch.equal(loaded.bias, model.bias)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing")
    with pytest.raises(ValueError, match="steps"):
        train(model, loss_fn, 0)


def test_unet_shapes_null_label_and_zero_start():
    from diffkit.nn import UNet

    torch.manual_seed(0)
    net = UNet(channels=2, base=8, mults=(1, 2, 2), num_classes=3).double()
    x = torch.randn(4, 2, 8, 12, dtype=torch.float64)
    # the last convolution starts at zero: a fresh network predicts 0 everywhere
    assert net(x, 0.5).abs().max() == 0
    torch.nn.init.normal_(net.out.weight, std=0.1)
    y = torch.tensor([0, 1, 2, 0])
    out = net(x, torch.rand(4, dtype=torch.float64), y)
    assert out.shape == x.shape and out.dtype == torch.float64
    # labels=None is the null label num_classes, and different labels give different outputs
    torch.testing.assert_close(net(x, 0.3), net(x, 0.3, torch.full((4,), 3)), rtol=0, atol=0)
    assert (net(x, 0.3, torch.zeros(4, dtype=torch.long)) - net(x, 0.3)).abs().max() > 1e-6
    # rows are independent (GroupNorm normalises within a sample): batching changes nothing
    torch.testing.assert_close(net(x, 0.3, y)[1:2], net(x[1:2], 0.3, y[1:2]), rtol=0, atol=1e-12)
    # a 0-dim label broadcasts over the batch
    torch.testing.assert_close(net(x, 0.3, torch.tensor(1)), net(x, 0.3, torch.ones(4, dtype=torch.long)))
    assert UNet(**net.config).config == net.config
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.randn(1, 2, 6, 8, dtype=torch.float64), 0.5)
    with pytest.raises(ValueError, match="unconditional"):
        UNet(base=8)(torch.randn(1, 1, 8, 8), 0.5, torch.tensor([0]))
    with pytest.raises(ValueError, match="num_classes"):
        UNet(num_classes=0)


def test_classifier_features_feed_the_head():
    from diffkit.nn import Classifier

    torch.manual_seed(0)
    clf = Classifier(size=8, num_classes=10, features=16).double().eval()
    x = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    f = clf.features(x)
    assert f.shape == (5, 16)
    torch.testing.assert_close(clf(x), clf.head(f), rtol=0, atol=0)
    with pytest.raises(ValueError, match="shape"):
        clf(torch.randn(5, 1, 12, 12, dtype=torch.float64))
    with pytest.raises(ValueError, match="multiple of 4"):
        Classifier(size=6)


@pytest.mark.parametrize("kwargs,name", [
    (dict(steps=0), "steps"), (dict(steps=2.5), "steps"), (dict(steps=True), "steps"),
    (dict(steps=10**9), "steps"), (dict(warmup=10**9), "warmup"), (dict(ema_decay=1.0), "ema_decay"),
    (dict(lr=float("inf")), "lr"), (dict(lr=float("nan")), "lr"), (dict(lr=0.0), "lr"),
    (dict(grad_clip=float("nan")), "grad_clip"), (dict(grad_clip=0.0), "grad_clip"), (dict(grad_clip=-1.0), "grad_clip"),
    (dict(warmup=-1), "warmup"), (dict(weight_decay=float("nan")), "weight_decay"),
])
def test_train_refuses_bad_arguments(kwargs, name):
    model = torch.nn.Linear(1, 1)
    args = dict(steps=2, progress=False)
    args.update(kwargs)
    steps = args.pop("steps")
    with pytest.raises((ValueError, TypeError), match=name):  # TypeError for a bool
        train(model, lambda m: m(torch.ones(1, 1)).sum(), steps, **args)
