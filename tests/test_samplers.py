"""Samplers: the front door, the registry, exact identities between solvers, exact laws against
Monte Carlo, dtype/device/seed behaviour and argument checks."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import diffkit.samplers as samplers
from diffkit import analytic, paths
from diffkit.samplers import sample, sampler_law

F64 = torch.float64
SOLVERS = ("ddpm", "ddim", "euler-maruyama", "pc", "euler", "heun", "dpm++2m", "dpm++3m", "rk4",
           "adaptive")
AFFINE = tuple(s for s in SOLVERS if s != "adaptive")
#: denoiser calls for a grid of N steps ending at t = 0 (the final step is one call everywhere)
NFE = {"ddpm": lambda n: n, "ddim": lambda n: n, "euler-maruyama": lambda n: n,
       "pc": lambda n: 2 * n, "euler": lambda n: n, "heun": lambda n: 2 * n - 1,
       "dpm++2m": lambda n: n, "dpm++3m": lambda n: n, "rk4": lambda n: 4 * n - 3}
#: options that make each stochastic solver actually draw noise
NOISY = {"ddim": {"eta": 0.5}, "heun": {"churn": 2.0}}


def gaussian():
    return analytic.Gaussian(torch.tensor([1.0, -0.5], dtype=F64),
                             torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=F64))


def mixture():
    return analytic.GaussianMixture(
        torch.tensor([0.3, 0.7], dtype=F64),
        torch.tensor([[1.0, 1.0], [-1.0, 0.0]], dtype=F64),
        torch.stack([0.1 * torch.eye(2, dtype=F64), torch.tensor([[0.2, 0.05], [0.05, 0.1]], dtype=F64)]))


def start(path, n, seed=0, dtype=F64):
    ts = paths.grid("logsnr", 4, path)
    g = torch.Generator().manual_seed(seed)
    return gaussian().marginal(float(ts[0]), path).sample(n, g).to(dtype)


def test_registry_lists_the_api_names():
    assert samplers.available() == SOLVERS
    for name in SOLVERS:
        assert callable(samplers.get(name))
    with pytest.raises(ValueError, match="ddpm, ddim"):
        samplers.get("dpm-solver")


@pytest.mark.parametrize("solver", SOLVERS)
def test_nfe_shapes_trajectory_and_never_t_zero(solver):
    """NFE per solver; ``xs``/``x0s``/``ts`` shapes; the denoiser gets a 0-dim ``t`` of x's dtype,
    never ``t = 0``; ``xs`` starts at ``x_start`` and ends at ``x``."""
    path = paths.get("vp-cosine")
    exact = gaussian().denoiser(path)
    seen = []

    def denoiser(x, t):
        seen.append(t)
        return exact(x, t)

    x = start(path, 5)
    res = sample(denoiser, path, x, solver, steps=6, generator=torch.Generator().manual_seed(0),
                 return_trajectory=True)
    assert res.nfe == len(seen)
    if solver in NFE:
        assert res.nfe == NFE[solver](6)
    assert all(t.dim() == 0 and t.dtype == F64 for t in seen)
    assert min(float(t) for t in seen) > 0.0
    assert res.ts.shape == (7,) and float(res.ts[-1]) == 0.0 and bool((res.ts.diff() < 0).all())
    assert res.xs.shape == (7, 5, 2)
    assert torch.equal(res.xs[0], x) and torch.equal(res.xs[-1], res.x)
    if solver == "adaptive":
        assert res.x0s is None
    elif solver != "pc":  # pc records the prediction after its Langevin corrections
        assert res.x0s.shape == (6, 5, 2)
        torch.testing.assert_close(res.x0s[0], exact(x, res.ts[0]), rtol=0, atol=0)


@pytest.mark.parametrize("path_name", ["linear", "edm"])
@pytest.mark.parametrize("grid", ["uniform", "logsnr", "karras"])
def test_euler_is_ddim_on_the_linear_path(grid, path_name):
    """On ``alpha = 1 - t, sigma = t`` the PF-ODE velocity is ``(x - D) / t``, and an Euler step
    ``x + (s - t)(x - D)/t = (s/t) x + (1 - s/t) D`` is DDIM's eq. 12 with ``eta = 0``: equal to
    float64 rounding, for a non-linear (mixture) denoiser and every grid. The same holds on EDM's
    path (``alpha = 1``, ``sigma`` linear in ``t``: Euler in ``sigma`` is DDIM)."""
    path = paths.get(path_name)
    D = mixture().denoiser(path)
    x = start(path, 64)
    a = sample(D, path, x, "euler", steps=12, grid=grid, return_trajectory=True)
    b = sample(D, path, x, "ddim", steps=12, grid=grid, eta=0.0, return_trajectory=True)
    torch.testing.assert_close(a.xs, b.xs, rtol=1e-12, atol=1e-12)


def test_euler_is_not_ddim_on_a_vp_path():
    """On a VP path Euler in ``t`` and DDIM (the exponential integrator) are different methods."""
    path = paths.get("vp-linear")
    D = mixture().denoiser(path)
    x = start(path, 16)
    a, b = (sample(D, path, x, s, steps=12).x for s in ("euler", "ddim"))
    assert float((a - b).abs().max()) > 1e-3


def test_ddpm_is_ddim_with_eta_one_draw_for_draw():
    """DDIM's ``eta = 1`` variance is the DDPM posterior variance and its mean the posterior mean
    (Song et al. 2021, eq. 16): with the same generator the two runs coincide."""
    path = paths.get("vp-linear")
    D = mixture().denoiser(path)
    x = start(path, 32)
    a = sample(D, path, x, "ddpm", steps=9, generator=torch.Generator().manual_seed(3))
    b = sample(D, path, x, "ddim", steps=9, eta=1.0, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a.x, b.x, rtol=1e-12, atol=1e-12)


def test_one_step_law_is_the_law_of_the_denoiser():
    """A single step onto ``t = 0`` is ``x = D(x, t0)`` with ``D`` affine:
    ``D(x) = m + alpha S V^-1 (x - alpha m)``, ``V = alpha^2 S + sigma^2 I``; for ``x ~ N(alpha m, V)``
    its law is ``N(m, alpha^2 S V^-1 S)`` exactly."""
    path = paths.get("ve")
    data = gaussian()
    law = sampler_law("dpm++2m", path, data, steps=1, grid="uniform")
    a, s = float(path.alpha(1.0)), float(path.sigma(1.0))
    V = a * a * data.cov + s * s * torch.eye(2, dtype=F64)
    torch.testing.assert_close(law.mean, data.mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(law.cov, a * a * data.cov @ torch.linalg.solve(V, data.cov),
                               rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("solver", AFFINE + ("ddim-eta", "heun-churn"))
def test_exact_law_agrees_with_monte_carlo(solver):
    """``sampler_law`` against ``n`` runs of the same solver from ``x_start ~ start``: every entry
    of the sample mean within 5 standard errors ``sqrt(C_ii / n)`` and of the sample covariance
    within 5 of ``sqrt((C_ii C_jj + C_ij^2) / n)`` (the Gaussian variance of a covariance entry)."""
    options = {}
    if solver.endswith(("-eta", "-churn")):
        solver = solver.split("-")[0]
        options = NOISY[solver]
    path = paths.get("vp-linear")
    data = gaussian()
    steps, n = 8, 10000
    law = sampler_law(solver, path, data, steps, "logsnr", **options)
    x = start(path, n, seed=11)
    out = sample(data.denoiser(path), path, x, solver, steps=steps, grid="logsnr",
                 generator=torch.Generator().manual_seed(12), **options).x
    mean, cov = out.mean(0), torch.cov(out.T)
    C = law.cov
    d = torch.diagonal(C)
    assert bool(((mean - law.mean).abs() <= 5 * torch.sqrt(d / n)).all()), (mean, law.mean)
    bound = 5 * torch.sqrt((d[:, None] * d[None, :] + C**2) / n)
    assert bool(((cov - C).abs() <= bound).all()), (cov, C)


def test_stochastic_laws_include_the_noise():
    """The injected noise matters: the law of DDPM differs from DDIM's (eta = 0) at 10 steps, and
    both converge to the data (weak order 1: the exact W2 roughly halves from 40 to 80 steps)."""
    path = paths.get("vp-linear")
    data = gaussian()
    law_ddpm, law_ddim = sampler_law("ddpm", path, data, 10), sampler_law("ddim", path, data, 10)
    assert float((law_ddpm.cov - law_ddim.cov).abs().max()) > 1e-2
    for solver in ("ddpm", "ddim"):
        w40, w80 = (float(analytic.w2_gaussian(sampler_law(solver, path, data, n), data))
                    for n in (40, 80))
        assert 0.4 < w80 / w40 < 0.6 and w80 < 0.1


def test_adaptive_meets_its_tolerance_and_counts_calls():
    """dopri5 to the last grid point, then ``D``: against the exact flow map of the Gaussian
    (``flow_map`` to ``t_{N-1}``, then ``D``) within a small multiple of the tolerance; tighter
    tolerances cost more calls."""
    path = paths.get("vp-linear")
    data = gaussian()
    D = data.denoiser(path)
    x = start(path, 16)
    ts = paths.grid("logsnr", 10, path)
    exact = D(data.flow_map(x, float(ts[0]), float(ts[-2]), path), ts[-2])
    nfe = []
    for tol in (1e-4, 1e-7):
        res = sample(D, path, x, "adaptive", steps=10, rtol=tol, atol=tol)
        assert float((res.x - exact).abs().max()) < 50 * tol
        nfe.append(res.nfe)
    assert nfe[1] > nfe[0] > 10


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dtype_and_device_follow_the_input(solver, dtype):
    path = paths.get("vp-linear")
    x = start(path, 8).to(dtype)
    seen = set()

    def denoiser(x, t):  # an affine stand-in that works in every dtype
        seen.add((x.dtype, t.dtype, x.device, t.device))
        return 0.5 * x + 0.1

    if solver == "adaptive" and dtype == torch.bfloat16:
        pytest.skip("torchdiffeq's step control needs float32 or float64")
    res = sample(denoiser, path, x, solver, steps=5, generator=torch.Generator().manual_seed(0),
                 return_trajectory=True, **NOISY.get(solver, {}))
    assert res.x.dtype == dtype and res.x.device == x.device and res.x.shape == x.shape
    assert res.ts.dtype == dtype and res.xs.dtype == dtype
    assert seen == {(dtype, dtype, x.device, x.device)}
    assert bool(torch.isfinite(res.x.float()).all())


@pytest.mark.parametrize("solver", ["ddpm", "ddim", "euler-maruyama", "pc", "heun"])
def test_same_seed_same_samples(solver):
    path = paths.get("vp-cosine")
    D = mixture().denoiser(path)
    x = start(path, 16)
    opts = NOISY.get(solver, {})

    def run(seed):
        return sample(D, path, x, solver, steps=7, generator=torch.Generator().manual_seed(seed), **opts).x

    assert torch.equal(run(5), run(5))
    assert not torch.allclose(run(5), run(6))


def test_deterministic_solvers_are_affine_in_their_start():
    """The public contract: a deterministic run with an exact Gaussian denoiser is an affine map of x_start
    (no hidden state between calls): ``f(a x + (1 - a) y) = a f(x) + (1 - a) f(y)``."""
    path = paths.get("edm")
    D = gaussian().denoiser(path)
    x, y = start(path, 4, seed=1), start(path, 4, seed=2)
    for solver in ("ddim", "euler", "heun", "dpm++2m", "dpm++3m", "rk4"):
        out = [sample(D, path, z, solver, steps=7).x for z in (0.3 * x + 0.7 * y, x, y)]
        torch.testing.assert_close(out[0], 0.3 * out[1] + 0.7 * out[2], rtol=1e-10, atol=1e-10)


def test_explicit_grid_not_ending_at_zero():
    """A tensor grid is used as given; one that stops at t > 0 has no final denoising step, and
    the state is a sample at that time (DDIM from the exact marginal stays on the marginal's mean)."""
    path = paths.get("vp-linear")
    data = gaussian()
    ts = torch.tensor([1.0, 0.6, 0.3, 0.1], dtype=F64)
    law = sampler_law("ddim", path, data, grid=ts)
    torch.testing.assert_close(law.mean, data.marginal(0.1, path).mean, rtol=1e-12, atol=1e-12)
    res = sample(data.denoiser(path), path, start(path, 3), "heun", grid=ts)
    assert res.nfe == 6 and torch.equal(res.ts, ts)


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 0}, r"steps must be an integer in \[1, 100000\]"),
    ({"solver": "dpm++4m"}, "ddpm, ddim, euler-maruyama, pc, euler, heun, dpm\\+\\+2m, dpm\\+\\+3m, rk4, adaptive"),
    ({"grid": "cosine"}, "uniform, logsnr, karras"),
    ({"grid": torch.tensor([0.0, 0.5, 1.0], dtype=F64)}, "strictly decreasing"),
    ({"grid": torch.tensor([1.5, 0.5, 0.0], dtype=F64)}, "within|lie in"),
    ({"solver": "ddim", "eta": 2.0}, "eta must lie in"),
    ({"solver": "pc", "predictor": "langevin"}, "reverse-diffusion, euler-maruyama"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    path = paths.get("vp-linear")
    args = dict(solver="ddim", steps=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sample(gaussian().denoiser(path), path, start(path, 2), **args)


def test_unknown_option_names_the_allowed_ones():
    path = paths.get("vp-linear")
    with pytest.raises(TypeError, match="churn, s_tmin, s_tmax, s_noise"):
        sample(gaussian().denoiser(path), path, start(path, 2), "heun", eta=0.5)
    with pytest.raises(ValueError, match="not an affine map"):
        sampler_law("adaptive", path, gaussian(), 4)
    with pytest.raises(TypeError, match="analytic.Gaussian"):
        sampler_law("ddim", path, mixture(), 4)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_dpm_moments_match_quadrature(k):
    """``M_k(h) = h^-k int_0^h e^(u-h) u^k du``: closed form (h >= 0.5) and series (h < 0.5) against
    numerical quadrature, on both sides of the switch."""
    from scipy.integrate import quad

    from diffkit.samplers.dpmsolver import moment

    for h in (1e-4, 0.1, 0.4999, 0.5, 0.5001, 2.0, 12.0):
        exact = quad(lambda u, h=h: math.exp(u - h) * u**k, 0.0, h, epsabs=0, epsrel=1e-13)[0] / h**k
        assert moment(k, h) == pytest.approx(exact, rel=1e-11)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(paths.NAMES), st.sampled_from(["ddim", "dpm++2m", "dpm++3m", "ddpm", "heun"]),
       st.integers(1, 12), st.floats(-2.0, 2.0), st.floats(0.05, 3.0), st.floats(-0.9, 0.9))
def test_exponential_integrators_keep_the_mean_exact(path_name, solver, steps, m, v, rho):
    """With the exact denoiser, ``x(t) = alpha(t) m`` solves the probability-flow ODE with
    ``D = m`` constant along it; DDIM and DPM-Solver++ integrate ``x0(lam)`` by polynomials, exact
    for a constant, DDPM's posterior mean is DDIM's step, and in EDM's variables (Heun) the mean
    trajectory ``y = x / alpha = m`` is a fixed point. So the output mean is exactly the data mean
    for every path, grid and step count (only the covariance carries the error); Euler and RK4 in
    ``t`` do not have this property."""
    path = paths.get(path_name)
    cov = torch.tensor([[v, rho * v**0.5], [rho * v**0.5, 1.0]], dtype=F64)
    data = analytic.Gaussian(torch.tensor([m, -0.5 * m], dtype=F64), cov)
    law = sampler_law(solver, path, data, steps, "karras")
    torch.testing.assert_close(law.mean, data.mean, rtol=0, atol=1e-10)


@pytest.mark.parametrize("solver", ["heun", "euler-maruyama", "pc", "ddpm", "rk4"])
def test_every_solver_is_finite_on_the_linear_path_uniform_grid(solver):
    """alpha(1) = 0 on the linear path: named grids start at t_start < 1, where every solver's
    variables (EDM's x / alpha, the SDE's drift) are finite."""
    g = analytic.Gaussian(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    p = paths.get("linear")
    x = p.prior((8, 2), generator=torch.Generator().manual_seed(0))
    out = sample(g.denoiser(p), p, x, solver=solver, steps=10, grid="uniform",
                         generator=torch.Generator().manual_seed(1))
    assert bool(torch.isfinite(out.x).all())
    assert float(out.ts[0]) == pytest.approx(p.t_start) and p.t_start < 1.0


def test_sampler_moments_are_the_law_and_cover_a_point_mass():
    """sampler_law is the Gaussian of sampler_moments; one ddim step from t = 1 on the linear path
    lands every start on D(x, 1) = E[x0]: covariance exactly 0, W2 to N(m, S) exactly sqrt(tr S)."""
    from diffkit.samplers import sampler_moments

    data = gaussian()
    law = sampler_law("heun", "vp-linear", data, 6)
    mean, cov = sampler_moments("heun", "vp-linear", data, 6)
    assert torch.equal(law.mean, mean) and torch.equal(law.cov, cov)
    one = torch.tensor([1.0, 0.0], dtype=torch.float64)
    mean, cov = sampler_moments("ddim", "linear", data, grid=one)
    torch.testing.assert_close(mean, data.mean, rtol=0, atol=1e-15)
    assert float(cov.abs().max()) == 0.0
    w2 = analytic.w2_gaussian(data, (mean, cov))
    assert float(w2) == pytest.approx(math.sqrt(float(torch.trace(data.cov))), rel=1e-12)


@pytest.mark.parametrize("grid", ["logsnr", "karras", "uniform"])
@pytest.mark.parametrize("data", ["standard", "correlated"])
def test_adaptive_follows_the_exact_flow_map_on_every_grid(grid, data):
    """``adaptive`` equals the exact probability-flow map to the last grid point, then the
    denoising step. With standard normal data on vp-linear every marginal is N(0, I) and the field
    is exactly zero: dopri5's error estimate is 0 and its steps grow tenfold, so a step that was
    allowed past the last output point reached t = 0 in floating point (and 0 / 0 there)."""
    path = paths.get("vp-linear")
    g = (analytic.Gaussian(torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64)) if data == "standard"
         else gaussian())
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(3), dtype=F64)
    seen = []

    def denoiser(y, t):
        seen.append(float(torch.as_tensor(t).min()))
        return g.denoise(y, t, path)

    res = sample(denoiser, path, x, "adaptive", steps=4, grid=grid, rtol=1e-10, atol=1e-10)
    ts = res.ts
    exact = g.denoise(g.flow_map(x, ts[0], ts[-2], path), ts[-2], path)
    torch.testing.assert_close(res.x, exact, rtol=1e-7, atol=1e-7)
    assert min(seen) >= float(ts[-2]) > 0  # the field is never asked below the last grid point
