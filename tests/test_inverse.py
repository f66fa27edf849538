"""Inversion and inverse problems on Gaussian data, where the flow map and the posterior are exact."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffkit import analytic, inverse, paths, sample

F64 = torch.float64
SIGMA_Y = 0.05


def gaussian(d=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=gen, dtype=F64)
    return analytic.Gaussian(torch.randn(d, generator=gen, dtype=F64), 0.5 * a @ a.T + 0.2 * torch.eye(d, dtype=F64))


def problem(seed=0):
    g = gaussian(seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    A = inverse.mask_operator(torch.tensor([1, 0, 1, 0]))
    y = A @ g.sample(1, gen)[0] + SIGMA_Y * torch.randn(2, generator=gen, dtype=F64)
    return g, A, y


@pytest.mark.parametrize("solver,order", [("ddim", 1), ("dpm++2m", 2)])
def test_inversion_converges_to_the_exact_flow_map_at_its_order(solver, order):
    """The inverted state against the exact flow map from the grid's smallest time to its start:
    doubling the steps divides the error by about 2^order; the round trip through the sampler with
    the same grid comes back to the start."""
    g, path = gaussian(2, 3), paths.get("vp-cosine")
    errs = []
    for n in (40, 80, 160):
        ts = inverse.inversion_grid(path, n)
        x = g.marginal(float(ts[0]), path).sample(6, torch.Generator().manual_seed(4))
        z = inverse.invert(g.denoiser(path), path, x, solver, n)
        errs.append(float((z - g.flow_map(x, float(ts[0]), float(ts[-1]), path)).abs().max()))
    rate = math.log2(errs[1] / errs[2])
    assert abs(rate - order) < 0.35, errs
    ts = inverse.inversion_grid(path, 160)
    back = sample(g.denoiser(path), path, z, solver=solver, grid=ts.flip(0)).x
    assert float((back - x).abs().max()) < {1: 0.1, 2: 0.01}[order]


@settings(max_examples=15, deadline=None)
@given(name=st.sampled_from(paths.NAMES), t=st.floats(0.02, 0.98), seed=st.integers(0, 2**16))
def test_exact_measurement_guidance_is_the_posterior_denoiser(name, t, seed):
    """D + sigma^2/alpha grad log p_t(y | x) is the exact denoiser of p(x0 | y) (Bayes at each t)."""
    g, A, y = problem(seed % 5)
    path = paths.get(name)
    guided = inverse.posterior(g.denoiser(path), path, lambda x, s: g.measurement_score(x, s, path, A, y, SIGMA_Y))
    x = 2 * torch.randn(5, 4, generator=torch.Generator().manual_seed(seed), dtype=F64)
    tt = torch.tensor(t, dtype=F64)
    post = g.posterior(A, y, SIGMA_Y)
    torch.testing.assert_close(guided(x, tt), post.denoiser(path)(x, tt), rtol=1e-8, atol=1e-8)


def test_exact_posterior_sampler_reaches_the_solvers_floor_and_dps_is_biased():
    """The exact posterior sampler's output law is the solver's own law on the posterior (same
    start): its W2 to p(x0 | y) is the solver's discretisation error, and falls with NFE. DPS (fixed
    weight zeta) and replacement stay far from the posterior at the same NFE."""
    g, A, y = problem(0)
    path = paths.get("vp-cosine")
    post = g.posterior(A, y, SIGMA_Y)
    guided = inverse.posterior(g.denoiser(path), path, lambda x, s: g.measurement_score(x, s, path, A, y, SIGMA_Y))
    w2 = {}
    for n in (10, 80):
        start = g.marginal(float(paths.grid("logsnr", n, path)[0]), path)
        law = analytic.denoiser_moments("dpm++2m", path, guided, start, n)
        floor = analytic.sampler_moments("dpm++2m", path, post, n, start=start)
        torch.testing.assert_close(law[0], floor[0], rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(law[1], floor[1], rtol=1e-9, atol=1e-9)
        w2[n] = float(analytic.w2_gaussian(post, law))
        dps = inverse.dps(g.denoiser(path), path, A, y, SIGMA_Y, zeta=SIGMA_Y**2)
        w2_dps = float(analytic.w2_gaussian(post, analytic.denoiser_moments("ddpm", path, dps, start, n)))
        w2_rep = float(analytic.w2_gaussian(post, analytic.run_moments(
            lambda x, noise, n=n: inverse.replacement(g.denoiser(path), path, x, A, y, n, noise=noise), start)))
        assert w2_dps > 5 * w2[n] and w2_rep > 5 * w2[n]
    assert w2[80] < w2[10] / 2


def test_replacement_law_matches_its_runs_and_resampling_helps():
    """The exact law read off replacement (RePaint with resampling) agrees with 4000 runs (mean within
    4 standard errors); resampling (jumps = 4) moves it closer to the posterior at 20 steps."""
    g, A, y = problem(1)
    path = paths.get("vp-linear")
    start = g.marginal(1.0, path)
    post = g.posterior(A, y, SIGMA_Y)

    def law(jumps):
        return analytic.run_moments(lambda x, noise: inverse.replacement(
            g.denoiser(path), path, x, A, y, 20, jumps=jumps, noise=noise), start)

    mean, cov = law(2)
    gen = torch.Generator().manual_seed(2)
    runs = inverse.replacement(g.denoiser(path), path, start.sample(4000, gen), A, y, 20, jumps=2, generator=gen)
    se = cov.diagonal().sqrt() / math.sqrt(4000)
    assert bool(((runs.mean(0) - mean).abs() <= 4 * se + 1e-12).all())
    torch.testing.assert_close(runs[:, [0, 2]], y.expand(4000, 2))  # the measured entries are y
    w1, w4 = (float(analytic.w2_gaussian(post, law(j))) for j in (1, 4))
    assert w4 < w1


def test_bad_operators_are_refused():
    g, A, y = problem(0)
    path = paths.get("ve")
    with pytest.raises(ValueError, match="orthonormal"):
        inverse.replacement(g.denoiser(path), path, g.sample(2), 2 * A, y, 5)
    with pytest.raises(ValueError, match="A must"):
        g.posterior(A[:, :3], y, SIGMA_Y)
    with pytest.raises(ValueError, match="sigma_y"):
        inverse.dps(g.denoiser(path), path, A, y, 0.0)
    with pytest.raises(ValueError, match="solver"):
        inverse.invert(g.denoiser(path), path, g.sample(2), "euler", 5)
