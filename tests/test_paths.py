"""Paths: closed forms, derivatives, logSNR re-timing and grids."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffkit import analytic, paths

T = torch.tensor([1e-4, 0.01, 0.2, 0.5, 0.8, 0.99], dtype=torch.float64)


@pytest.mark.parametrize("name", paths.NAMES)
def test_data_at_zero_and_logsnr_decreasing(name):
    p = paths.get(name)
    assert float(p.alpha(0.0)) == 1.0
    assert float(p.sigma(0.0)) == 0.0
    lam = p.logsnr(T)
    assert bool((lam[1:] < lam[:-1]).all())


@pytest.mark.parametrize("name", paths.NAMES)
def test_derivatives_match_finite_differences(name):
    p = paths.get(name)
    h = 1e-6
    t = T[1:]
    for f, df in ((p.alpha, p.dalpha), (p.sigma, p.dsigma), (p.logsnr, p.dlogsnr)):
        fd = (f(t + h) - f(t - h)) / (2 * h)
        torch.testing.assert_close(df(t), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", paths.NAMES)
def test_logsnr_closed_form_and_inverse(name):
    p = paths.get(name)
    lam = p.logsnr(T)
    torch.testing.assert_close(lam, 2 * torch.log(p.alpha(T) / p.sigma(T)), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(p.t_from_logsnr(lam), T, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["vp-linear", "vp-cosine"])
def test_variance_preserving(name):
    p = paths.get(name)
    torch.testing.assert_close(p.alpha(T) ** 2 + p.sigma(T) ** 2, torch.ones_like(T), rtol=0, atol=1e-14)


def test_vp_linear_alpha_solves_its_sde():
    """alpha(t) = exp(-1/2 int_0^t beta): d log alpha / dt = -beta(t) / 2 (Song et al. 2021, eq. 33)."""
    p = paths.get("vp-linear")
    torch.testing.assert_close(p.dalpha(T) / p.alpha(T), -0.5 * p.beta(T))


@settings(max_examples=40, deadline=None)
@given(src=st.sampled_from(paths.NAMES), dst=st.sampled_from(paths.NAMES),
       t=st.floats(0.05, 0.95), seed=st.integers(0, 2**16))
def test_retiming_through_logsnr_gives_the_same_marginal(src, dst, t, seed):
    """x_t on one path, rescaled by alpha, is x at the same logSNR on any other path."""
    gen = torch.Generator().manual_seed(seed)
    a_ = torch.randn(2, 2, generator=gen, dtype=torch.float64)
    g = analytic.Gaussian(torch.randn(2, generator=gen, dtype=torch.float64), a_ @ a_.T + 0.3 * torch.eye(2, dtype=torch.float64))
    ps, pd = paths.get(src), paths.get(dst)
    lam = ps.logsnr(t)
    u = pd.t_from_logsnr(lam)
    if not 0 < float(u) < 1:
        return
    ms, md = g.marginal(t, ps), g.marginal(u, pd)
    u2, scale = paths.retime(ps, pd, t)
    assert float(u2) == float(u)
    torch.testing.assert_close(ms.mean * scale, md.mean, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(ms.cov * scale**2, md.cov, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", paths.NAMES)
@pytest.mark.parametrize("kind", paths.GRIDS)
def test_grids_decrease_to_zero_and_agree_in_logsnr(name, kind):
    p = paths.get(name)
    ts = paths.grid(kind, 12, p)
    assert ts.shape == (13,) and float(ts[-1]) == 0.0 and float(ts[0]) == pytest.approx(p.t_start)
    assert bool((ts[1:] < ts[:-1]).all())
    if kind != "uniform":
        # a named grid is a function of the logSNR ends alone: on another path with the same ends
        # (vp-cosine and linear both start at logSNR -20) it picks the same noise levels
        other = paths.get("linear" if name == "vp-cosine" else "vp-cosine")
        lam_other = other.logsnr(paths.grid(kind, 12, other)[:-1])
        if abs(float(p.logsnr(p.t_start)) + 20.0) < 1e-9:
            torch.testing.assert_close(p.logsnr(ts[1:-1]), lam_other[1:], rtol=1e-9, atol=1e-9)


def test_logsnr_grid_is_uniform_in_logsnr():
    p = paths.get("vp-linear")
    lam = p.logsnr(paths.grid("logsnr", 9, p)[:-1])
    torch.testing.assert_close(lam[1:] - lam[:-1], torch.full((8,), float(lam[1] - lam[0]), dtype=torch.float64))
    assert float(lam[-1]) == pytest.approx(paths.LOGSNR_MAX)


def test_karras_grid_matches_edm_formula():
    p = paths.get("edm")
    ts = paths.grid("karras", 5, p)
    s = p.sigma(ts[:-1])
    smax, smin, rho = 80.0, 0.002, 7.0
    ref = torch.tensor([(smax ** (1 / rho) + i / 4 * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho for i in range(5)], dtype=torch.float64)
    torch.testing.assert_close(s, ref, rtol=1e-10, atol=1e-12)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="path must be one of"):
        paths.get("vp-quadratic")
    with pytest.raises(ValueError, match="grid must be one of"):
        paths.grid("cosine", 10, "ve")
    with pytest.raises(ValueError, match="steps"):
        paths.grid("logsnr", 0, "ve")
    with pytest.raises(ValueError, match="decreasing"):
        paths.grid(torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64), None, "ve")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        paths.grid(torch.tensor([1.5, 0.5, 0.0], dtype=torch.float64), None, "ve")
    with pytest.raises(ValueError, match="t must lie in"):
        paths.check_time(torch.tensor([0.5, 1.2]))


def test_prior_scale_and_generator():
    p = paths.get("ve")
    a = p.prior((4, 3), generator=torch.Generator().manual_seed(3))
    b = p.prior((4, 3), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.dtype == torch.float64
    z = p.prior(200000, generator=torch.Generator().manual_seed(0))
    assert float(z.std()) == pytest.approx(50.0, rel=0.01)
    assert math.isclose(float(p.sigma(1.0)), 50.0 * math.sqrt(1 - 0.01**2 / 50.0**2), rel_tol=1e-12)
