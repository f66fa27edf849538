"""Guidance on a labelled Gaussian mixture, where every guided field and law is exact."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffkit import analytic, guidance, paths, sample, views

F64 = torch.float64


def labelled_mixture(seed=0, k=4, d=2):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(k, d, d, generator=gen, dtype=F64)
    covs = 0.2 * a @ a.transpose(1, 2) + 0.1 * torch.eye(d, dtype=F64)
    return analytic.GaussianMixture(torch.rand(k, generator=gen, dtype=F64) + 0.3,
                                    2 * torch.randn(k, d, generator=gen, dtype=F64), covs,
                                    labels=[i % 2 for i in range(k)])


def test_labels_conditional_and_class_posterior_are_bayes():
    """p(c | x) at t = 0 is p(c) p(x | c) / p(x) from the conditional mixtures' densities; the
    conditionals reweighted by p(c) give back the mixture."""
    mix = labelled_mixture(1)
    x = mix.sample(7, torch.Generator().manual_seed(2))
    prior = mix.class_prior()
    joint = torch.stack([prior[i] * mix.conditional(c).log_prob(x).exp()
                         for i, c in enumerate(mix.classes)], 1)
    torch.testing.assert_close(mix.class_posterior(x, 0.0, "linear"), joint / joint.sum(1, keepdim=True))
    torch.testing.assert_close(joint.sum(1), mix.log_prob(x).exp())
    assert mix.conditional(1).labels.tolist() == [1, 1]


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(paths.NAMES), t=st.floats(0.05, 0.95), scale=st.floats(-1.0, 6.0),
       seed=st.integers(0, 2**16))
def test_classifier_guidance_with_exact_posterior_is_cfg(name, t, scale, seed):
    """score + s grad log p_t(c | x) = s score_c + (1 - s) score_u: classifier guidance with the
    exact class posterior and CFG at the same scale are one denoiser."""
    mix, path = labelled_mixture(seed % 7), paths.get(name)
    x = 2 * torch.randn(6, 2, generator=torch.Generator().manual_seed(seed), dtype=F64)
    tt = torch.tensor(t, dtype=F64)
    c = 1
    col = mix.classes.index(c)
    by_classifier = guidance.classifier(mix.denoiser(path),
                                        lambda z, s: mix.class_log_posterior(z, s, path)[:, col], scale, path)
    by_cfg = guidance.cfg(mix.conditional(c).denoiser(path), mix.denoiser(path), scale)
    torch.testing.assert_close(by_classifier(x, tt), by_cfg(x, tt), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("scale", [0.0, 1.0, 3.0])
def test_cfg_field_is_the_score_of_the_tilted_marginal(scale):
    """The CFG denoiser's score is grad_x [s log p_t(x | c) + (1 - s) log p_t(x)] (autograd)."""
    mix, path = labelled_mixture(3), paths.get("vp-linear")
    t = torch.tensor(0.4, dtype=F64)
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(4), dtype=F64).requires_grad_(True)
    (grad,) = torch.autograd.grad(mix.tilted_log_prob(x, 0, scale, t, path).sum(), x)
    guided = guidance.cfg(mix.conditional(0).denoiser(path), mix.denoiser(path), scale)
    with torch.no_grad():
        score = views.from_x0("score", guided(x, t), x, t, path)
    torch.testing.assert_close(score, grad, rtol=1e-9, atol=1e-9)


def test_cfg_scale_convention_and_interval():
    """scale 1 is the conditional denoiser, 0 the unconditional one; the interval version guides
    inside [t_lo, t_hi] only, for scalar and per-row times."""
    mix, path = labelled_mixture(5), "vp-cosine"
    d_c, d_u = mix.conditional(0).denoiser(path), mix.denoiser(path)
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    t = torch.tensor(0.3, dtype=F64)
    torch.testing.assert_close(guidance.cfg(d_c, d_u, 1.0)(x, t), d_c(x, t))
    torch.testing.assert_close(guidance.cfg(d_c, d_u, 0.0)(x, t), d_u(x, t))
    limited = guidance.interval(d_c, d_u, 3.0, 0.2, 0.5)
    torch.testing.assert_close(limited(x, t), guidance.cfg(d_c, d_u, 3.0)(x, t))
    torch.testing.assert_close(limited(x, torch.tensor(0.7, dtype=F64)), d_c(x, torch.tensor(0.7, dtype=F64)))
    ts = torch.tensor([0.1, 0.3, 0.6, 0.45], dtype=F64)
    rows = torch.stack([limited(x[i:i + 1], ts[i])[0] for i in range(4)])
    torch.testing.assert_close(limited(x, ts), rows)
    res = sample(limited, path, torch.randn(3, 2, dtype=F64), solver="heun", steps=4)
    assert res.x.shape == (3, 2) and torch.isfinite(res.x).all()
    with pytest.raises(ValueError, match="t_lo"):
        guidance.interval(d_c, d_u, 2.0, 0.6, 0.5)
    with pytest.raises(TypeError, match="scale"):
        guidance.cfg(d_c, d_u, "big")
    with pytest.raises(ValueError, match="labels"):
        analytic.GaussianMixture([1.0], [[0.0, 0.0]], torch.eye(2)[None]).conditional(0)
    with pytest.raises(ValueError, match="classes"):
        mix.conditional(7)


def test_cfg_samples_the_tilted_law_only_at_scales_zero_and_one():
    """At s = 0 and s = 1 the tilted data law is the unconditional / conditional law, which the exact
    PF-ODE samples (TV at the quadrature's floor); at s = 2 CFG's law is measurably not the tilted
    one, and its precision rises while its coverage falls (grid quadrature, 24 x 24)."""
    eye = torch.eye(2, dtype=F64)
    mix = analytic.GaussianMixture([1, 1, 1, 1], [[-1.5, 0], [1.5, 0], [0, 1.5], [0, -1.5]],
                                   torch.stack([0.2 * eye] * 4), labels=[0, 0, 1, 1])
    box = (-4.5, 4.5, -4.5, 4.5)
    gaps = {s: guidance.tilted_gap(mix, 0, s, "vp-cosine", box, n=24, rtol=1e-4, atol=1e-4)
            for s in (0.0, 1.0, 2.0)}
    assert gaps[0.0]["tv"] < 2e-3 and gaps[1.0]["tv"] < 2e-3
    assert gaps[2.0]["tv"] > 0.1 and gaps[2.0]["kl"] > 0.05
    assert gaps[1.0]["precision"] == pytest.approx(gaps[1.0]["coverage"], abs=5e-3)
    assert gaps[2.0]["precision"] > gaps[1.0]["precision"] > gaps[0.0]["precision"]
    assert gaps[2.0]["coverage"] < gaps[1.0]["coverage"]


def test_knn_precision_coverage_identities():
    """A cloud against itself: precision = coverage = 1; a cloud shrunk onto one real point: full
    precision, coverage 1/n at most k + 1 points' worth; disjoint clouds: both 0."""
    real = torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    assert guidance.knn_precision_coverage(real, real) == {"precision": 1.0, "coverage": 1.0}
    collapsed = real[:1].expand(50, 2)
    pc = guidance.knn_precision_coverage(real, collapsed, k=5)
    assert pc["precision"] == 1.0 and pc["coverage"] <= 0.1
    far = guidance.knn_precision_coverage(real, real + 100.0)
    assert far == {"precision": 0.0, "coverage": 0.0}
    with pytest.raises(ValueError, match="k must"):
        guidance.knn_precision_coverage(real, real, k=0)
