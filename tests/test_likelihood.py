"""Likelihood by the probability-flow ODE and the ELBO, against the exact oracles."""

import math

import pytest
import torch

from diffkit import analytic, likelihood, paths

F64 = torch.float64


def gaussian(d=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=gen, dtype=F64)
    return analytic.Gaussian(torch.randn(d, generator=gen, dtype=F64), 0.5 * a @ a.T + 0.2 * torch.eye(d, dtype=F64))


def mixture():
    covs = torch.stack([0.3 * torch.eye(2, dtype=F64), torch.tensor([[0.5, 0.2], [0.2, 0.4]], dtype=F64)])
    return analytic.GaussianMixture(torch.tensor([0.3, 0.7], dtype=F64),
                                    torch.tensor([[-2.0, 0.0], [2.0, 1.0]], dtype=F64), covs, labels=[0, 1])


@pytest.mark.parametrize("name", ["vp-cosine", "linear"])
def test_log_prob_recovers_the_exact_marginal(name):
    """log p_{t_min}(x) by the PF-ODE and the exact trace equals the oracle's marginal log-density
    within 1e-4 nats at rtol = atol = 1e-7, for a Gaussian and a mixture, when the prior is the exact
    marginal at t_max (the only approximation left is the ODE solve)."""
    path = paths.get(name)
    t_min = float(path.t_from_logsnr(paths.LOGSNR_MAX))
    for data, n in ((gaussian(), 3), (mixture(), 3)):
        x = data.sample(n, torch.Generator().manual_seed(1))
        lp = likelihood.log_prob(data.denoiser(path), path, x, rtol=1e-7, atol=1e-7,
                                 prior_log_prob=data.marginal(path.t_start, path).log_prob)
        torch.testing.assert_close(lp, data.marginal_log_prob(x, t_min, path), rtol=0, atol=1e-4)


def test_log_prob_error_shrinks_with_the_tolerance():
    """The error against the exact value falls by at least 10x from rtol 1e-4 to 1e-7."""
    g, path = gaussian(2, 3), paths.get("vp-cosine")
    x = g.sample(3, torch.Generator().manual_seed(2))
    ref = g.marginal_log_prob(x, float(path.t_from_logsnr(paths.LOGSNR_MAX)), path)
    prior = g.marginal(1.0, path).log_prob
    err = [float((likelihood.log_prob(g.denoiser(path), path, x, rtol=tol, atol=tol,
                                      prior_log_prob=prior) - ref).abs().max()) for tol in (1e-4, 1e-7)]
    assert err[1] < err[0] / 10


def test_hutchinson_is_unbiased_for_the_exact_trace():
    """Rademacher probes: the mean of e^T J e over 500 probes is within 3 standard errors of
    tr J, row by row, for the exact Gaussian velocity in 5 dimensions."""
    from diffkit.views import from_x0

    g, path = gaussian(5, 4), paths.get("vp-linear")
    t = torch.tensor(0.3, dtype=F64)
    x = g.sample(3, torch.Generator().manual_seed(5))

    def f(z):
        return from_x0("velocity", g.denoise(z, t, path), z, t, path)

    _, exact = likelihood.divergence(f, x, "exact-trace")
    probes = likelihood.rademacher((500, *x.shape), torch.Generator().manual_seed(6))
    per_probe = torch.stack([likelihood.divergence(f, x, "hutchinson", probes[j:j + 1])[1]
                             for j in range(0, 500, 1)])
    mean, se = per_probe.mean(0), per_probe.std(0) / math.sqrt(500)
    assert bool(((mean - exact).abs() < 3 * se).all())
    assert bool((se > 0).all())  # a non-diagonal Jacobian: the estimate really is random
    # and the trace itself: the divergence of an affine field is the trace of its matrix
    lam = g.evals[0]
    a, s, da, ds = (float(v(t)) for v in (path.alpha, path.sigma, path.dalpha, path.dsigma))
    v = a * a * lam + s * s
    torch.testing.assert_close(exact, torch.full((3,), float(((a * da * lam + s * ds) / v).sum()), dtype=F64))


def test_hutchinson_log_prob_is_unbiased():
    """The probes do not move the trajectory, so Hutchinson's log p is unbiased: 64 independent
    one-probe estimates per point (one batched solve) average to the exact-trace value within 3
    standard errors (plus the solver tolerance)."""
    mix, path = mixture(), paths.get("vp-cosine")
    x = mix.sample(3, torch.Generator().manual_seed(7))
    exact = likelihood.log_prob(mix.denoiser(path), path, x, rtol=1e-6, atol=1e-6)
    reps = 64
    hutch = likelihood.log_prob(mix.denoiser(path), path, x.repeat(reps, 1), "hutchinson", rtol=1e-6,
                                atol=1e-6, generator=torch.Generator().manual_seed(8)).reshape(reps, 3)
    mean, se = hutch.mean(0), hutch.std(0) / math.sqrt(reps)
    assert bool(((mean - exact).abs() < 3 * se + 1e-4).all())
    assert bool((se > 1e-3).all())


def test_elbo_monte_carlo_matches_the_closed_form_and_bounds_log_p():
    """The Monte-Carlo ELBO of the exact Gaussian denoiser is within 3 standard errors of the
    closed-form ELBO (analytic.Gaussian.elbo); prior and reconstruction terms agree to float64
    precision; on average over the points the bound is above the entropy's estimate -log p."""
    g, path = gaussian(3, 9), paths.get("vp-linear")
    x0 = g.sample(4, torch.Generator().manual_seed(10))
    mc = likelihood.elbo(g.denoiser(path), path, x0, samples=4000, generator=torch.Generator().manual_seed(11))
    exact = g.elbo(x0, path)
    torch.testing.assert_close(mc["prior"], exact["prior"])
    torch.testing.assert_close(mc["reconstruction"], exact["reconstruction"])
    assert bool(((mc["total"] - exact["total"]).abs() < 3 * mc["total_se"]).all())
    assert float(mc["total"].mean()) > float(-g.log_prob(x0).mean()) - 3 * float(mc["total_se"].max())


def test_bits_per_dim_and_bad_arguments():
    """bits/dim is nats / (d log 2); dequantisation adds -log2(bin width) per dimension."""
    lp = torch.tensor([-10.0, -20.0], dtype=F64)
    torch.testing.assert_close(likelihood.bits_per_dim(lp, 4), 10 * torch.tensor([1.0, 2.0], dtype=F64) / (4 * math.log(2)))
    torch.testing.assert_close(likelihood.bits_per_dim(lp, 4, 0.125) - likelihood.bits_per_dim(lp, 4),
                               torch.full((2,), 3.0, dtype=F64))
    g = gaussian(2)
    with pytest.raises(ValueError, match="method"):
        likelihood.log_prob(g.denoiser("ve"), "ve", g.sample(2), method="trace")
    with pytest.raises(ValueError, match="t_min"):
        likelihood.log_prob(g.denoiser("ve"), "ve", g.sample(2), t_min=0.9, t_max=0.5)
