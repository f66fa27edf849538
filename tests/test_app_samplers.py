"""The Samplers tab: its endpoint called with gradio_client against the hub on 127.0.0.1, its
input bounds, and the exact figures it reports.

The figures checked are exact: with the "one Gaussian" preset a run is an affine map of its
start, so the W2 the endpoint reports must equal ``w2_gaussian(sampler_law(...), data)``
computed here; the NFE of each solver per step is known (1, 2 for heun less its last step, 4 for
rk4 less three on its last step); the W2 curves fall at each solver's convergence order. For a
mixture the reported W2 is the optimal-transport estimate against fresh data, recomputed here.
"""

from __future__ import annotations

import base64
import math

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from apps import hub, samplers_tab
from diffkit import analytic
from diffkit import sampler_error as se
from diffkit.samplers import sampler_law

pytestmark = [pytest.mark.app, pytest.mark.timeout(120)]

API = "/" + samplers_tab.API_NAME
PNG = b"\x89PNG\r\n\x1a\n"
GAUSS = samplers_tab.GAUSSIAN


@pytest.fixture(scope="module")
def client(hub_url):
    if samplers_tab not in hub.TABS:
        pytest.fail("apps.samplers_tab is not in apps.hub.TABS: register the Samplers tab")
    return Client(hub_url, verbose=False)


def _png(plot) -> bytes:
    assert plot["type"] == "matplotlib"
    head, data = plot["plot"].split(",", 1)
    assert head == "data:image/png;base64"
    return base64.b64decode(data)


def _call(client, solver, steps, *, path="vp-linear", grid="logsnr", points=64, data=GAUSS,
          seed=0):
    return client.predict(path, solver, grid, steps, points, data, seed, api_name=API)


#: NFE of ``steps`` steps ending at t = 0 (the last step is one denoising call)
NFE = {"ddim": lambda n: n, "ddpm": lambda n: n, "dpm++2m": lambda n: n,
       "heun": lambda n: 2 * n - 1, "rk4": lambda n: 4 * n - 3, "pc": lambda n: 2 * n}


@pytest.mark.parametrize("solver", ["ddim", "ddpm", "heun", "dpm++2m", "rk4"])
def test_endpoint_reports_the_exact_w2(client, solver):
    steps = 12
    traj, samples, w2_fig, values, note = _call(client, solver, steps)
    for fig in (traj, samples, w2_fig):
        assert _png(fig).startswith(PNG)
    assert values["solver"] == solver and values["steps"] == steps and values["points"] == 64
    assert values["nfe"] == NFE[solver](steps)
    data = samplers_tab.data(GAUSS)
    law = sampler_law(solver, "vp-linear", data, steps=steps, grid="logsnr")
    exact = float(analytic.w2_gaussian(law, data))
    # printed to samplers_tab.DIGITS = 6 significant digits
    assert values["w2_exact"] == values["w2"] == pytest.approx(exact, rel=5e-6)
    assert values["w2_kind"].startswith("exact") and values["w2_noise_floor"] is None
    assert f"{exact:.3g}" in note
    assert len(values["sample_cov"]) == 2 and values["exact_mean"] == pytest.approx([0.8, -0.4])


def test_adaptive_has_no_exact_law_and_says_so(client):
    _, _, _, values, note = _call(client, "adaptive", 8)
    assert values["w2_exact"] is None and "no exact W2" in note
    assert values["nfe"] > 8  # dopri5: six evaluations per accepted step at least
    assert "adaptive" not in values["curve_w2"]


def test_w2_curves_fall_at_the_solvers_orders(client):
    """The curves the tab draws: exact W2 against NFE per solver; from 16 to 32 steps on the
    logSNR grid the measured order is about 1 for ddim, 2 for heun, > 3.5 for rk4, and the
    orders the legend quotes are those."""
    *_, values, _ = _call(client, "euler", 4)
    curves = {s: (values["curve_nfe"][s], values["curve_w2"][s]) for s in values["curve_w2"]}
    assert set(curves) == set(samplers_tab.EXACT_SOLVERS)
    order = {s: se.fitted_order(n[-2:], w[-2:]) for s, (n, w) in curves.items()}
    assert values["curve_order"] == pytest.approx(order, abs=0.006)
    assert abs(order["ddim"] - 1) < 0.3 and abs(order["heun"] - 2) < 0.4 and order["rk4"] > 3.5
    nfe_ddim, w2_ddim = curves["ddim"]
    assert nfe_ddim == list(samplers_tab.CURVE_STEPS)
    assert curves["dpm++2m"][1][-1] < w2_ddim[-1] / 5  # same NFE, second against first order
    # the point of this run sits on the curve: euler at 4 steps
    assert values["w2_exact"] == pytest.approx(curves["euler"][1][2], rel=5e-6)


def test_same_seed_same_samples(client):
    a = _call(client, "ddpm", 10, seed=7)[3]
    b = _call(client, "ddpm", 10, seed=7)[3]
    c = _call(client, "ddpm", 10, seed=8)[3]
    assert a["sample_mean"] == b["sample_mean"] and a["sample_cov"] == b["sample_cov"]
    assert a["sample_mean"] != c["sample_mean"]


def test_mixture_w2_is_the_sample_estimate_with_its_floor():
    """For a mixture the tab reports the optimal-transport W2 between the run's samples and as
    many fresh data points (recomputed here from the same run), with the noise floor at that
    size; the curves are estimates at CURVE_POINTS points, and no order is quoted for them."""
    res, values = samplers_tab.run("edm", "pc", "karras", 10, 128, "three anisotropic", 5)
    assert values["nfe"] == NFE["pc"](10) and values["w2_exact"] is None
    mix = samplers_tab.data("three anisotropic")
    assert values["w2"] == pytest.approx(se.sample_w2(res.x, mix, 5), rel=5e-6)
    assert values["w2_kind"].startswith("estimate: optimal transport between the 128 samples")
    floor = se.empirical_w2_floor(mix, 128, reps=samplers_tab.FLOOR_REPS, seed=0)
    assert values["w2_noise_floor"] == pytest.approx(list(floor), rel=5e-6)
    *_, values, note = samplers_tab.compute("edm", "pc", "karras", 10, 128, "three anisotropic", 5)
    assert "curve_order" not in values and "noise floor at 128 points" in note


@pytest.mark.parametrize("args, message", [
    (dict(steps=101), r"steps must be a whole number in 1\.\.100; got 101$"),
    (dict(steps=0), r"steps must be a whole number in 1\.\.100; got 0$"),
    (dict(steps=10, points=1024), r"points must be a whole number in 16\.\.512; got 1024$"),
    (dict(steps=10, points=8), r"points must be a whole number in 16\.\.512; got 8$"),
    (dict(steps=10.5), r"steps must be a whole number in 1\.\.100; got 10.5, which is not whole"),
    (dict(steps=10, seed=10**6), r"seed must be a whole number in 0\.\.9999; got 1e\+06$"),
    (dict(steps="inf"), r"steps must be a whole number in 1\.\.100; got inf$"),
])
def test_bounds_are_refused_by_the_api(client, args, message):
    with pytest.raises(AppError, match=message):
        _call(client, "euler", **args)


@pytest.mark.parametrize("which, value", [(1, "euler-heun"), (2, "cosine"), (5, "spiral")])
def test_unknown_choices_are_refused(client, which, value):
    args = ["vp-linear", "euler", "logsnr", 4, 64, GAUSS, 0]
    args[which] = value
    name = samplers_tab.SPECS[which].name
    with pytest.raises(AppError, match=f"{name} must be one of .*; got '{value}'"):
        client.predict(*args, api_name=API)


def test_named_api_by_keyword(client):
    """view_api() names every parameter and output; a call by keyword (the others at their
    defaults) answers for what it was asked."""
    info = client.view_api(return_format="dict", print_info=False)["named_endpoints"][API]
    assert [p["parameter_name"] for p in info["parameters"]] == [
        "path", "solver", "grid", "steps", "points", "data", "seed"]
    assert all(p["label"] for p in info["parameters"])
    assert [r["label"] for r in info["returns"]] == [
        "trajectories", "samples on the exact density", "W2 against NFE", "this run", "note"]
    *_, values, _ = client.predict(solver="rk4", steps=3, data=GAUSS, api_name=API)
    assert (values["solver"], values["steps"], values["nfe"]) == ("rk4", 3, 4 * 3 - 3)
    assert values["points"] == samplers_tab.DEFAULT["points"]


def test_pure_function_bounds_and_the_linear_path_start():
    run = samplers_tab.run
    with pytest.raises(ValueError, match=r"steps must be a whole number in 1\.\.100"):
        run("ve", "euler", "logsnr", 101, 64, GAUSS)
    with pytest.raises(ValueError, match=r"points must be a whole number in 16\.\.512"):
        run("ve", "euler", "logsnr", 10, 513, GAUSS)
    with pytest.raises(ValueError, match="solver must be one of"):
        run("ve", "sde", "logsnr", 10, 64, GAUSS)
    with pytest.raises(ValueError, match="data must be one of"):
        run("ve", "euler", "logsnr", 10, 64, "moons")
    # alpha(1) = 0 on the linear path: every named grid starts at t_start < 1, where the
    # reverse-SDE drift alpha'/alpha is finite
    for grid in ("uniform", "logsnr"):
        res, values = run("linear", "euler-maruyama", grid, 10, 64, GAUSS)
        assert res.xs.shape == (11, 64, 2) and math.isfinite(values["w2_exact"])
        assert bool(torch.isfinite(res.x).all())


def test_ui_states_every_bound(hub_url):
    import httpx

    cfg = httpx.get(hub_url + "config", timeout=10).json()
    props = {c["props"].get("elem_id"): c["props"] for c in cfg["components"]}
    steps, points = props["samplers-steps"], props["samplers-points"]
    assert (steps["minimum"], steps["maximum"]) == (1, samplers_tab.MAX_STEPS)
    assert (points["minimum"], points["maximum"]) == (samplers_tab.MIN_POINTS,
                                                      samplers_tab.MAX_POINTS)
    assert "a whole number in 1..100" in steps["info"]
    assert "a whole number in 16..512" in points["info"]
    assert "2n - 1 for heun" in steps["info"] and "4n - 3 for rk4" in steps["info"]
    assert props["samplers-seed"]["maximum"] == samplers_tab.MAX_SEED
    assert "a whole number in 0..9999" in props["samplers-seed"]["info"]


def test_one_gaussian_runs_are_exact_in_law():
    """Monte Carlo against the exact law: 512 ddim samples of "one Gaussian" have the mean and
    covariance of ``sampler_law`` within their sampling error."""
    res, values = samplers_tab.run("vp-cosine", "ddim", "uniform", 6, 512, GAUSS, 3)
    law = sampler_law("ddim", "vp-cosine", samplers_tab.data(GAUSS), steps=6, grid="uniform")
    se = (torch.diagonal(law.cov) / 512).sqrt()
    assert torch.all((res.x.mean(0) - law.mean).abs() < 4 * se)
    assert torch.cov(res.x.T).numpy() == pytest.approx(law.cov.numpy(), abs=0.15)


def test_degenerate_law_has_the_exact_w2_of_a_point_mass():
    """One euler step from t = 1 on the linear path lands every start on D(x, 1) = E[x0]: the
    output law is a point mass at the mean, whose W2 to N(m, S) is exactly sqrt(tr S)."""
    data = samplers_tab.data(GAUSS)
    w2 = se.exact_w2("euler", "linear", data, grid=torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert w2 == pytest.approx(math.sqrt(float(torch.trace(data.cov))), rel=1e-12)
