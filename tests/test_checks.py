"""Argument validation: the shared checks of ``diffkit._checks`` and the inputs that used to
crash, hang, allocate without bound or return nan in silence, each now refused by name (or, for
the adaptive solver on a zero field, sampled correctly)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import diffkit
from diffkit import _checks, analytic, paths
from diffkit.samplers import available

F64 = torch.float64


def gaussian(dtype=F64):
    return analytic.Gaussian(torch.tensor([1.0, -2.0], dtype=dtype),
                             torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=dtype))


# -- the shared checks ---------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(n=st.integers(-10**6, 10**6))
def test_integer_accepts_integers_and_whole_floats(n):
    assert _checks.integer("k", n) == n
    assert _checks.integer("k", float(n)) == n and type(_checks.integer("k", float(n))) is int
    assert _checks.integer("k", torch.tensor(n)) == n


@settings(max_examples=50, deadline=None)
@given(x=st.floats(-1e6, 1e6).filter(lambda v: v != math.floor(v)))
def test_integer_refuses_non_whole_floats_instead_of_truncating(x):
    with pytest.raises(ValueError, match="k must be an integer"):
        _checks.integer("k", x)


@pytest.mark.parametrize("value, error", [(math.nan, ValueError), (math.inf, ValueError),
                                          (True, TypeError), ("3", TypeError), (None, TypeError),
                                          ([3], TypeError), (1j, TypeError)])
def test_integer_refuses_what_is_not_an_integer(value, error):
    with pytest.raises(error, match="^k must"):
        _checks.integer("k", value)


def test_bounds_are_stated_in_the_message():
    with pytest.raises(ValueError, match=r"steps must be an integer in \[1, 10\]; got 11"):
        _checks.integer("steps", 11, 1, 10)
    with pytest.raises(ValueError, match=r"eta must lie in \[0, 1\]; got 2.0"):
        _checks.real("eta", 2.0, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"rho must lie in \(0, inf\)"):
        _checks.real("rho", 0.0, 0.0, low_open=True)


def test_real_refuses_nan_always_and_inf_unless_allowed():
    for bad in (math.nan, math.inf, -math.inf, torch.tensor(math.nan)):
        with pytest.raises(ValueError, match="x must be a finite real number"):
            _checks.real("x", bad)
    assert _checks.real("x", math.inf, allow_inf=True) == math.inf
    with pytest.raises(ValueError, match="x must be a finite"):
        _checks.real("x", math.nan, allow_inf=True)


def test_choice_refuses_unhashable_and_unknown_names():
    with pytest.raises(TypeError, match="solver must be one of a, b .*list"):
        _checks.choice("solver", ["a"], ("a", "b"))
    with pytest.raises(ValueError, match="solver must be one of a, b; got 'c'"):
        _checks.choice("solver", "c", ("a", "b"))


def test_tensor_checks_type_dtype_dimensions_and_finiteness():
    with pytest.raises(TypeError, match="x must be a tensor"):
        _checks.tensor("x", [1.0])
    assert _checks.tensor("x", [1, 2], floating=True, convert=True).dtype == F64
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        _checks.tensor("x", torch.zeros(2, dtype=torch.long), floating=True)
    with pytest.raises(ValueError, match="x must have 2 dimension"):
        _checks.tensor("x", torch.zeros(3), dim=2)
    with pytest.raises(ValueError, match="x must be finite; it holds nan"):
        _checks.tensor("x", torch.tensor([0.0, math.nan]))


# -- sizes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [math.inf, 10**9, 10**12, 2.5, -1, True])
def test_steps_are_integers_with_a_stated_upper_bound(steps):
    g, path = gaussian(), paths.get("vp-linear")
    with pytest.raises((ValueError, TypeError), match="steps must be an integer"):
        diffkit.sample(g.denoiser(path), path, torch.zeros(2, 2, dtype=F64), "ddim", steps=steps)


def test_a_whole_float_number_of_steps_is_that_integer():
    g, path = gaussian(), paths.get("vp-linear")
    x = g.marginal(1.0, path).sample(4, torch.Generator().manual_seed(0))
    a = diffkit.sample(g.denoiser(path), path, x, "dpm++2m", steps=5)
    b = diffkit.sample(g.denoiser(path), path, x, "dpm++2m", steps=5.0)
    assert torch.equal(a.x, b.x) and a.nfe == b.nfe == 5


def test_sizes_that_allocate_are_bounded():
    with pytest.raises(ValueError, match="shape must have at most"):
        paths.get("ve").prior((10**6, 10**6))
    with pytest.raises(ValueError, match="n must be an integer in"):
        gaussian().sample(10**12)
    with pytest.raises(ValueError, match="n must be an integer"):
        gaussian().sample(2.5)


# -- types -------------------------------------------------------------------------------------
def test_wrong_types_are_type_errors_naming_the_argument():
    with pytest.raises(TypeError, match="mean must be a tensor"):
        analytic.Gaussian(None, torch.eye(2))
    with pytest.raises(TypeError, match="path must be one of .*list"):
        paths.get(["vp-linear"])
    with pytest.raises(TypeError, match="src must be one of"):
        paths.retime(None, "ve", 0.5)
    with pytest.raises(TypeError, match="t must be a real number"):
        paths.get("edm").sigma("0.5")


@pytest.mark.parametrize("low", [torch.float16, torch.bfloat16])
def test_low_precision_oracles_compute_in_float64_and_answer_in_their_dtype(low):
    """``eigh`` has no float16/bfloat16 kernel: the decomposition runs in float64 and the oracle
    keeps the caller's dtype; its answers agree with the float64 oracle to that dtype's precision."""
    g_low, g64 = gaussian(low), gaussian()
    assert g_low.mean.dtype == low and g_low.evecs.dtype == low
    path = paths.get("vp-cosine")
    x = g64.marginal(0.5, path).sample(16, torch.Generator().manual_seed(1))
    d_low = g_low.denoise(x.to(low), 0.5, path)
    assert d_low.dtype == low
    torch.testing.assert_close(d_low.to(F64), g64.denoise(x.to(low).to(F64), 0.5, path),
                               rtol=0.05, atol=0.05)
    w2 = analytic.w2_gaussian(g_low, (g64.mean + 0.5, g64.cov))
    kl = analytic.kl_gaussian(g_low, g64)
    assert w2.dtype == low and kl.dtype == low
    assert float(w2) == pytest.approx(0.5 * math.sqrt(2.0), rel=0.02)
    assert abs(float(kl)) < 0.05


# -- non-finite values ---------------------------------------------------------------------------
@pytest.mark.parametrize("solver", available())
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_starts_are_refused_by_every_solver(solver, bad):
    g, path = gaussian(), paths.get("vp-linear")
    x = torch.zeros(3, 2, dtype=F64)
    x[1, 0] = bad
    with pytest.raises(ValueError, match="x_start must be finite"):
        diffkit.sample(g.denoiser(path), path, x, solver, steps=3)


@pytest.mark.parametrize("call, name", [
    (lambda: paths.VE(sigma_max=math.inf), "sigma_max"),
    (lambda: paths.EDM(sigma_max=math.inf), "sigma_max"),
    (lambda: paths.VPCosine(logsnr_min=math.nan), "logsnr_min"),
    (lambda: paths.VPLinear(beta_max=math.inf), "beta_max"),
    (lambda: paths.VPLinear(beta_min=30.0), "beta_max must exceed beta_min"),
    (lambda: paths.grid("karras", 4, "edm", rho=0.0), "rho"),
    (lambda: paths.grid("karras", 4, "edm", rho=math.nan), "rho"),
    (lambda: paths.get("vp-linear").alpha(math.nan), "t must be a time"),
    (lambda: paths.get("vp-linear").t_from_logsnr(math.nan), "logsnr must not be nan"),
])
def test_non_finite_path_and_grid_parameters_are_refused(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("solver, options, name", [
    ("pc", {"snr": math.inf}, "snr"), ("pc", {"snr": math.nan}, "snr"),
    ("heun", {"churn": math.nan}, "churn"), ("heun", {"churn": math.inf}, "churn"),
    ("heun", {"s_noise": math.nan}, "s_noise"), ("ddim", {"eta": math.nan}, "eta"),
    ("adaptive", {"rtol": math.nan}, "rtol"), ("adaptive", {"atol": 0.0}, "atol"),
    ("pc", {"corrector_steps": 1.5}, "corrector_steps"),
])
def test_non_finite_solver_options_are_refused(solver, options, name):
    g, path = gaussian(), paths.get("vp-linear")
    with pytest.raises(ValueError, match=f"{name} must"):
        diffkit.sample(g.denoiser(path), path, torch.zeros(2, 2, dtype=F64), solver, steps=3, **options)


def test_a_denoiser_that_returns_nan_is_named_not_passed_on():
    path = paths.get("vp-linear")
    with pytest.raises(ValueError, match="denoiser: the run produced nan or inf"):
        diffkit.sample(lambda x, t: x * math.nan, path, torch.zeros(2, 2, dtype=F64), "euler", steps=3)


def test_oracles_refuse_non_finite_states():
    g, path = gaussian(), paths.get("vp-linear")
    x = torch.tensor([[0.0, math.nan]], dtype=F64)
    for method in (g.score, g.denoise, g.velocity, g.marginal_log_prob):
        with pytest.raises(ValueError, match="x must be finite"):
            method(x, 0.5, path)
    with pytest.raises(ValueError, match="t must be > 0"):
        g.velocity(torch.zeros(1, 2, dtype=F64), 0.0, path)


def test_w2_and_kl_refuse_matrices_that_are_not_covariances():
    g = gaussian()
    not_pd = (g.mean, torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=F64))
    with pytest.raises(ValueError, match="p's covariance must be positive definite"):
        analytic.w2_gaussian(not_pd, g)
    with pytest.raises(ValueError, match="q's covariance must be positive semi-definite"):
        analytic.w2_gaussian(g, not_pd)
    with pytest.raises(ValueError, match="q's covariance must be positive definite"):
        analytic.kl_gaussian(g, not_pd)
    with pytest.raises(ValueError, match="p's covariance must be positive definite"):
        analytic.kl_gaussian(not_pd, g)
    with pytest.raises(ValueError, match="p's covariance must be symmetric"):
        analytic.w2_gaussian((g.mean, torch.tensor([[1.0, 0.5], [0.0, 1.0]], dtype=F64)), g)


def test_w2_to_a_point_mass_is_the_root_of_the_trace():
    """A degenerate law (a sampler that sends every start to one point) is a valid ``q``:
    ``W2(N(m, S), delta_m)^2 = tr S`` exactly."""
    g = gaussian()
    w2 = analytic.w2_gaussian(g, (g.mean, torch.zeros(2, 2, dtype=F64)))
    assert float(w2) == pytest.approx(math.sqrt(float(torch.trace(g.cov))), rel=1e-12)
