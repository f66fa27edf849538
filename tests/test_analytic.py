"""The Gaussian and mixture oracles against independent computations."""

import math

import pytest
import torch
import torchdiffeq
from hypothesis import given, settings
from hypothesis import strategies as st

from diffkit import analytic, paths

F64 = torch.float64


def random_gaussian(seed, d=3):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=gen, dtype=F64)
    return analytic.Gaussian(torch.randn(d, generator=gen, dtype=F64), a @ a.T + 0.2 * torch.eye(d, dtype=F64))


def random_mixture(seed, k=3, d=2):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(k, d, d, generator=gen, dtype=F64)
    covs = a @ a.transpose(1, 2) * 0.3 + 0.1 * torch.eye(d, dtype=F64)
    return analytic.GaussianMixture(torch.rand(k, generator=gen, dtype=F64) + 0.2,
                                    3 * torch.randn(k, d, generator=gen, dtype=F64), covs)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(paths.NAMES), t=st.floats(0.01, 0.99), seed=st.integers(0, 2**16))
def test_tweedie_for_random_gaussians(name, t, seed):
    """D(x, t) = (x + sigma^2 score(x, t)) / alpha (Tweedie's formula)."""
    g, p = random_gaussian(seed), paths.get(name)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(seed + 1), dtype=F64) * 3
    tt = torch.tensor(t, dtype=F64)
    lhs = g.denoiser(p)(x, tt)
    rhs = (x + p.sigma(tt) ** 2 * g.score(x, tt, p)) / p.alpha(tt)
    torch.testing.assert_close(lhs, rhs, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name", paths.NAMES)
def test_mixture_score_is_autograd_of_marginal_log_density(name):
    mix, p = random_mixture(0), paths.get(name)
    x = torch.randn(7, 2, generator=torch.Generator().manual_seed(5), dtype=F64).requires_grad_(True)
    t = torch.tensor(0.35, dtype=F64)
    (grad,) = torch.autograd.grad(mix.marginal_log_prob(x, t, p).sum(), x)
    torch.testing.assert_close(mix.score(x.detach(), t, p), grad, rtol=1e-10, atol=1e-12)
    # the marginal object and the direct formula agree
    torch.testing.assert_close(mix.marginal(t, p).log_prob(x.detach()), mix.marginal_log_prob(x.detach(), t, p))


@pytest.mark.parametrize("name", paths.NAMES)
def test_mixture_denoiser_is_posterior_mean_by_quadrature(name):
    """E[x0 | x_t] by brute-force numerical integration over a grid of x0 (2-D mixture)."""
    mix, p = random_mixture(1), paths.get(name)
    t = torch.tensor(0.3, dtype=F64)
    a, s = p.alpha(t), p.sigma(t)
    g = torch.linspace(-12, 12, 601, dtype=F64)
    x0 = torch.cartesian_prod(g, g)
    logp0 = mix.log_prob(x0)
    x = torch.tensor([[0.3, -0.5], [1.5, 2.0]], dtype=F64)
    for xi in x:
        loglik = -((xi - a * x0) ** 2).sum(1) / (2 * s**2)
        w = torch.softmax(logp0 + loglik, 0)
        post_mean = (w[:, None] * x0).sum(0)
        torch.testing.assert_close(mix.denoiser(p)(xi[None], t)[0], post_mean, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", paths.NAMES)
def test_flow_map_agrees_with_a_fine_ode_solve(name):
    g, p = random_gaussian(3), paths.get(name)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=F64) * 2
    s, t = 0.9, 0.05
    sol = torchdiffeq.odeint(lambda tau, y: g.velocity(y, tau, p), x, torch.tensor([s, t], dtype=F64),
                             method="dopri5", rtol=1e-11, atol=1e-11)[-1]
    torch.testing.assert_close(g.flow_map(x, s, t, p), sol, rtol=1e-6, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(paths.NAMES), s=st.floats(0.0, 1.0), u=st.floats(0.0, 1.0),
       t=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_flow_map_composes(name, s, u, t, seed):
    g, p = random_gaussian(seed), paths.get(name)
    if name == "linear":   # alpha(1) = 0: the map out of t = 1 is not invertible
        s, u, t = (min(v, 0.999) for v in (s, u, t))
    x = torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=F64)
    direct = g.flow_map(x, s, t, p)
    twice = g.flow_map(g.flow_map(x, s, u, p), u, t, p)
    torch.testing.assert_close(twice, direct, rtol=1e-7, atol=1e-7)


def test_flow_map_pushes_marginal_to_marginal():
    g, p = random_gaussian(4), paths.get("vp-linear")
    ms, mt = g.marginal(0.8, p), g.marginal(0.1, p)
    # the map is affine: x -> A x + b; push N(ms) through it
    basis = torch.cat([torch.zeros(1, 3, dtype=F64), torch.eye(3, dtype=F64)])
    out = g.flow_map(basis, 0.8, 0.1, p)
    b, a = out[0], (out[1:] - out[0]).T
    torch.testing.assert_close(a @ ms.mean + b, mt.mean)
    torch.testing.assert_close(a @ ms.cov @ a.T, mt.cov)


def test_sample_and_log_prob():
    g = random_gaussian(5)
    xs = g.sample(200000, generator=torch.Generator().manual_seed(0))
    assert xs.dtype == F64
    torch.testing.assert_close(xs.mean(0), g.mean, atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(xs.T), g.cov, atol=0.05, rtol=0)
    from torch.distributions import MultivariateNormal
    x = torch.randn(5, 3, dtype=F64)
    torch.testing.assert_close(g.log_prob(x), MultivariateNormal(g.mean, g.cov).log_prob(x))
    mix = random_mixture(2)
    ref = torch.logsumexp(torch.stack([torch.log(w) + MultivariateNormal(m, c).log_prob(x[:, :2])
                                       for w, m, c in zip(mix.weights, mix.means, mix.covs)]), 0)
    torch.testing.assert_close(mix.log_prob(x[:, :2]), ref)
    a = mix.sample(10, generator=torch.Generator().manual_seed(1))
    b = mix.sample(10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_elbo_is_a_bound_and_tight_for_the_exact_denoiser():
    g = random_gaussian(6)
    x0 = g.sample(20000, generator=torch.Generator().manual_seed(0))
    nll = -g.log_prob(x0)
    wide = paths.get("vp-cosine", logsnr_min=-40.0)
    terms = g.elbo(x0, wide, t_min=1e-12, t_max=1.0)
    # over (practically) the whole SNR range the bound is tight point by point
    torch.testing.assert_close(terms["total"], nll, rtol=1e-6, atol=1e-6)
    # on a truncated range it is a strict bound on average, and the terms add up
    t = g.elbo(x0, "vp-linear")
    assert float(t["total"].mean()) > float(nll.mean())
    torch.testing.assert_close(t["total"], t["prior"] + t["diffusion"] + t["reconstruction"])
    torch.testing.assert_close(t["bpd"], t["total"] / (3 * math.log(2)))
    assert float(g.entropy()) == pytest.approx(float(nll.mean()), rel=0.01)


def test_w2_and_kl_against_direct_formulas():
    p, q = random_gaussian(7), random_gaussian(8)
    sp = analytic.sqrtm_psd(p.cov)
    naive = ((p.mean - q.mean) ** 2).sum() + torch.trace(p.cov + q.cov - 2 * analytic.sqrtm_psd(sp @ q.cov @ sp))
    torch.testing.assert_close(analytic.w2_gaussian(p, q) ** 2, naive, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(analytic.w2_gaussian(q, p), analytic.w2_gaussian(p, q), rtol=1e-9, atol=1e-12)
    from torch.distributions import MultivariateNormal, kl_divergence
    ref = kl_divergence(MultivariateNormal(p.mean, p.cov), MultivariateNormal(q.mean, q.cov))
    torch.testing.assert_close(analytic.kl_gaussian(p, q), ref)
    assert float(analytic.kl_gaussian(p, p)) == pytest.approx(0.0, abs=1e-12)


def test_w2_resolves_tiny_differences():
    """For commuting covariances W2^2 = |dm|^2 + ||S_p^1/2 - S_q^1/2||_F^2; with a 1e-9 relative
    change the stable formula keeps about 6 digits where the textbook trace formula keeps none."""
    p = random_gaussian(9)
    q = analytic.Gaussian(p.mean, p.cov * (1 + 1e-9) ** 2)
    exact = torch.linalg.norm(analytic.sqrtm_psd(p.cov) * 1e-9)
    assert float(analytic.w2_gaussian(p, q)) == pytest.approx(float(exact), rel=1e-5)


def test_bad_inputs_raise_value_errors_naming_the_argument():
    with pytest.raises(ValueError, match="cov must be positive definite"):
        analytic.Gaussian(torch.zeros(2), torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
    with pytest.raises(ValueError, match="cov must have shape"):
        analytic.Gaussian(torch.zeros(2), torch.eye(3))
    with pytest.raises(ValueError, match="cov must be symmetric"):
        analytic.Gaussian(torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"covs\[1\] must be positive definite"):
        analytic.GaussianMixture([0.5, 0.5], torch.zeros(2, 2), torch.stack([torch.eye(2), torch.zeros(2, 2)]))
    with pytest.raises(ValueError, match="weights must have shape"):
        analytic.GaussianMixture([1.0], torch.zeros(2, 2), torch.stack([torch.eye(2)] * 2))
    g = random_gaussian(0)
    with pytest.raises(ValueError, match=r"x must have shape \[n, 3\]"):
        g.score(torch.zeros(4, 2, dtype=F64), 0.5, "ve")
    with pytest.raises(ValueError, match="t must lie in"):
        g.score(torch.zeros(4, 3, dtype=F64), 1.5, "ve")
    with pytest.raises(ValueError, match="path must be one of"):
        g.denoiser("vp-quadratic")
    with pytest.raises(TypeError, match="p must be"):
        analytic.w2_gaussian("gaussian", g)


def test_float32_in_float32_out():
    g = random_gaussian(0)
    x = torch.randn(4, 3)
    t = torch.tensor(0.5)
    for out in (g.denoiser("ve")(x, t), g.score(x, t, "ve"), g.velocity(x, t, "ve"), g.flow_map(x, 0.5, 0.1, "ve")):
        assert out.dtype == torch.float32


def test_mixture_moments_match_samples_and_moment_matched_gaussian():
    mix = random_mixture(3)
    xs = mix.sample(400000, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(mix.mean, xs.mean(0), atol=0.02, rtol=0)
    torch.testing.assert_close(mix.cov, torch.cov(xs.T), atol=0.06, rtol=0.02)
    g = mix.moment_matched()
    assert torch.equal(g.mean, mix.mean)
    one = analytic.GaussianMixture([1.0], mix.means[:1], mix.covs[:1])
    torch.testing.assert_close(one.cov, mix.covs[0])
