"""diffkit.train.fit: every view learns gmm8's exact denoiser; bad arguments are refused."""

from __future__ import annotations

import pytest
import torch

from diffkit import analytic, data, metrics, paths, train
from diffkit.nn import TimeMLP

PATH = "vp-linear"
# t where the path still carries signal (alpha(0.6) = 0.16 on vp-linear): further out, an eps or
# score network's error is multiplied by sigma / alpha in the denoiser, whatever the loss
TS = torch.tensor([0.02, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6], dtype=torch.float64)
#: (loss, the target its view trains natively, steps)
VIEWS = [("elbo", "eps", 600), ("dsm", "score", 600), ("cfm", "velocity", 600)]


def _fit(loss, target, steps, seed=0, **kw):
    torch.manual_seed(seed)
    net = TimeMLP(2, hidden=64, depth=3)
    return train.fit(net, data.toy_mixture("gmm8"), PATH, loss=loss, target=target, steps=steps,
                     batch_size=256, lr=1e-2, ema_decay=0.99, progress=False, **kw)


def _ratio(D):
    """E||D - D*||^2 / E||D* - x0||^2 over TS: the learned denoiser's excess error relative to the
    least error any denoiser can reach (the MMSE of the exact one)."""
    mix = data.toy_mixture("gmm8")
    exact = mix.denoiser(paths.get(PATH))
    err = metrics.denoiser_error(D, exact, PATH, TS, mix, n=2000, generator=torch.Generator().manual_seed(1))
    mmse = metrics.denoiser_error(exact, None, PATH, TS, mix, n=2000, generator=torch.Generator().manual_seed(1))
    return err / mmse


@pytest.mark.parametrize("loss,target,steps", VIEWS, ids=[v[0] for v in VIEWS])
def test_each_view_learns_the_exact_mixture_denoiser(loss, target, steps, one_thread):
    untrained = train.LearnedDenoiser(TimeMLP(2, hidden=64, depth=3), target, PATH)
    assert float(_ratio(untrained).max()) > 0.7  # a fresh network is far from the oracle ...
    D = _fit(loss, target, steps)
    ratio = _ratio(D)
    # ... the trained one is within half the MMSE at every t, and a fifth on average
    assert float(ratio.max()) < 0.5, ratio
    assert float(ratio.mean()) < 0.2, ratio
    assert len(D.result.losses) == steps and D.target == target
    # it samples through diffkit.sample like an exact denoiser
    import diffkit

    x1 = torch.randn(1000, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out = diffkit.sample(D, PATH, x1, solver="dpm++2m", steps=20)
    ref = data.toy("gmm8", 1000, torch.Generator().manual_seed(3), dtype=torch.float64)
    noise_floor = metrics.w2_empirical(data.toy("gmm8", 1000, torch.Generator().manual_seed(4),
                                                dtype=torch.float64), ref)
    assert metrics.w2_empirical(out.x, ref) < noise_floor + 0.25


def test_fit_is_reproducible_and_follows_the_generator(one_thread):
    a = _fit("cfm", "x0", 5, generator=torch.Generator().manual_seed(7))
    b = _fit("cfm", "x0", 5, generator=torch.Generator().manual_seed(7))
    c = _fit("cfm", "x0", 5, generator=torch.Generator().manual_seed(8))
    sa, sb, sc = a.net.state_dict(), b.net.state_dict(), c.net.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_class_conditional_fit_learns_both_denoisers(one_thread):
    """Two classes (the even and the odd components of gmm8), label dropout 0.2: the one network's
    conditional denoiser approaches the exact denoiser of its class's mixture, its null-label one
    the whole mixture's."""
    mix = data.toy_mixture("gmm8")
    g = torch.Generator().manual_seed(0)
    which = torch.randint(8, (6000,), generator=g)
    x = mix.means[which] + data.GMM8_STD * torch.randn(6000, 2, generator=g, dtype=torch.float64)
    labels = which % 2
    torch.manual_seed(0)
    net = TimeMLP(2, hidden=64, depth=3, num_classes=2)
    D = train.fit(net, x.float(), PATH, loss="cfm", target="velocity", steps=600, batch_size=256, lr=1e-2,
                  labels=labels, label_dropout=0.2, ema_decay=0.99, progress=False)
    half = [analytic.GaussianMixture(torch.ones(4, dtype=torch.float64), mix.means[c::2], mix.covs[c::2])
            for c in (0, 1)]
    ts = torch.tensor([0.1, 0.3, 0.5], dtype=torch.float64)
    for c in (0, 1):
        exact = half[c].denoiser(paths.get(PATH))
        err = metrics.denoiser_error(D.with_labels(c), exact, PATH, ts, half[c], n=1000,
                                     generator=torch.Generator().manual_seed(1))
        other = metrics.denoiser_error(D.with_labels(1 - c), exact, PATH, ts, half[c], n=1000,
                                       generator=torch.Generator().manual_seed(1))
        mmse = metrics.denoiser_error(exact, None, PATH, ts, half[c], n=1000, generator=torch.Generator().manual_seed(1))
        assert float((err / mmse).max()) < 0.5 and bool((other[:2] > 10 * err[:2]).all())
    err = metrics.denoiser_error(D, mix.denoiser(paths.get(PATH)), PATH, ts, mix, n=1000,
                                 generator=torch.Generator().manual_seed(1))
    mmse = metrics.denoiser_error(mix.denoiser(paths.get(PATH)), None, PATH, ts, mix, n=1000,
                                  generator=torch.Generator().manual_seed(1))
    assert float((err / mmse).max()) < 0.5


@pytest.mark.parametrize("kwargs,name", [
    (dict(loss="mse"), "loss"), (dict(target="noise"), "target"), (dict(steps=0), "steps"),
    (dict(steps=2.5), "steps"), (dict(batch_size=0), "batch_size"), (dict(lr=float("nan")), "lr"),
    (dict(lr=float("inf")), "lr"), (dict(lr=-1.0), "lr"), (dict(label_dropout=1.5), "label_dropout"),
    (dict(ema_decay=1.0), "ema_decay"), (dict(autocast="fp8"), "autocast"), (dict(autocast="bf16"), "autocast"),
    (dict(labels=torch.zeros(10, dtype=torch.long)), "labels"), (dict(grad_clip=0.0), "grad_clip"),
    (dict(grad_clip=float("nan")), "grad_clip"),
])
def test_bad_fit_arguments_name_the_argument(kwargs, name):
    x = torch.zeros(10, 2)
    args = dict(loss="dsm", target="eps", steps=3, progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        train.fit(TimeMLP(2, hidden=8, depth=1), x, PATH, **args)


def test_bad_data_is_refused():
    net = TimeMLP(2, hidden=8, depth=1)
    with pytest.raises(ValueError, match="data must be finite"):
        train.fit(net, torch.full((4, 2), float("nan")), PATH, steps=1, progress=False)
    with pytest.raises(TypeError, match="data must be a tensor"):
        train.fit(net, [[0.0, 1.0]], PATH, steps=1, progress=False)


def test_learned_denoiser_labels_are_checked():
    net = TimeMLP(2, hidden=8, depth=1, num_classes=3)
    D = train.LearnedDenoiser(net, "eps", PATH)
    x = torch.zeros(4, 2, dtype=torch.float64)
    assert D(x, 0.5).dtype == torch.float64  # a float32 net answers in x's dtype
    torch.testing.assert_close(D.with_labels(torch.tensor([2, 2, 2, 2]))(x, 0.5), D.with_labels(2)(x, 0.5))
    with pytest.raises(ValueError, match="labels must lie in"):
        D.with_labels(3)
    with pytest.raises(ValueError, match="labels has 2 entries"):
        D.with_labels(torch.tensor([0, 1]))(x, 0.5)
    with pytest.raises(ValueError, match="unconditional"):
        train.LearnedDenoiser(TimeMLP(2, hidden=8, depth=1), "eps", PATH, labels=0)


def test_x0_range_clips_the_prediction():
    torch.manual_seed(0)
    net = TimeMLP(2, hidden=8, depth=1)
    D = train.LearnedDenoiser(net, "eps", PATH, x0_range=(-1.0, 1.0))
    x = 5 * torch.randn(64, 2, dtype=torch.float64)
    raw = train.LearnedDenoiser(net, "eps", PATH)(x, 0.9)
    torch.testing.assert_close(D(x, 0.9), raw.clamp(-1, 1), rtol=0, atol=0)
    assert float(raw.detach().abs().max()) > 1  # the clip did something
    assert D.with_labels(None).x0_range == (-1.0, 1.0)
    with pytest.raises(ValueError, match="x0_range"):
        train.LearnedDenoiser(net, "eps", PATH, x0_range=(1.0, -1.0))
