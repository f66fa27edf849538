"""The "Learned vs exact" and "Digits" tabs: their endpoints called with gradio_client against the
hub on 127.0.0.1 (named parameters), their input bounds, and the figures they report.

What is checked is computed independently here: on gmm8 the W2 distance between the *exact*
denoiser's samples and the held-out data (a float64, deterministic run of the exact mixture
denoiser, then exact optimal transport), and the denoiser-error curve of each shipped model; for
the digits, the accuracy equals the share of the reported readings that match the asked-for digit,
and the NFE follows the solver's calls per step.
"""

from __future__ import annotations

import base64

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from apps import digits_tab, hub, learned_tab
from diffkit import data, metrics
from diffkit import sample as run_sampler

pytestmark = [pytest.mark.app, pytest.mark.timeout(180)]

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def hub_client(hub_url):
    return Client(hub_url, verbose=False)


@pytest.fixture(scope="module")
def client(hub_client):
    if learned_tab not in hub.TABS:
        pytest.fail("apps.learned_tab is not in apps.hub.TABS: register it")
    return hub_client


def _png(plot) -> bytes:
    assert plot["type"] == "matplotlib"
    head, raw = plot["plot"].split(",", 1)
    assert head == "data:image/png;base64"
    raw = base64.b64decode(raw)
    assert raw.startswith(PNG)
    return raw


def _learned(client, **kw):
    return client.predict(**dict(learned_tab.ENDPOINT.defaults, **kw), api_name="/" + learned_tab.API_NAME)


@pytest.mark.parametrize("view", learned_tab.VIEWS)
def test_gmm8_reports_exact_w2_and_the_models_error_curve(client, view):
    fig_l, fig_e, fig_c, values, note = _learned(client, view=view, steps=12, points=128, t=0.5)
    for fig in (fig_l, fig_e, fig_c):
        _png(fig)
    assert values["model"] == learned_tab.MODELS[("gmm8", view)] and values["view"] == view
    assert values["nfe"] == 12 and values["points"] == 128
    # the exact denoiser's samples: recomputed here, float64, same start and solver
    path = learned_tab.model_path(values["model"])
    mix = data.toy_mixture("gmm8")
    x1 = path.prior((128, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = run_sampler(mix.denoiser(path), path, x1, solver="dpm++2m", steps=12, grid="logsnr").x
    ref = data.toy("gmm8", learned_tab.MAX_POINTS, generator=torch.Generator().manual_seed(2024), dtype=torch.float64)
    assert values["w2_exact"] == pytest.approx(metrics.w2_empirical(x, ref[:128]), rel=1e-9)
    # the error curve is the model's denoiser error against the exact one: recomputed here
    ts = values["error_ts"]
    again = metrics.denoiser_error(learned_tab.model(values["model"]).denoiser(), mix.denoiser(path), path, ts, mix,
                                   n=2000, generator=torch.Generator().manual_seed(7))
    assert values["error_curve"] == pytest.approx(again.tolist(), rel=1e-4)
    assert values["error_t"] == min(ts, key=lambda s: abs(s - 0.5))
    assert f"{values['w2_learned']:.3f}" in note


def test_moons_says_there_is_no_exact_field_and_grades_by_w2(client):
    _, fig_e, fig_c, values, note = _learned(client, data_name="moons", view="score", steps=8, points=96)
    _png(fig_e)
    assert values["model"] == learned_tab.MOONS_MODEL and values["exact"] is None
    assert "no exact field" in note
    assert len(values["curve_nfe"]) == len(learned_tab.CURVE_STEPS) and min(values["curve_w2"]) > 0
    assert values["w2_learned"] > 0 and values["nfe"] == 8


@pytest.mark.parametrize("kw, message", [
    (dict(steps=0), "steps must be a whole number in 1..50"), (dict(steps=learned_tab.MAX_STEPS + 1), "steps"),
    (dict(t=1.5), "t must be a number in"), (dict(points=10), "points must be"), (dict(seed=2.5), "not whole"),
    (dict(data_name="spirals"), "data_name must be one of"), (dict(solver="rk4"), "solver must be one of"),
])
def test_learned_refuses_out_of_bounds_inputs(client, kw, message):
    with pytest.raises(AppError, match=message):
        _learned(client, **kw)


@pytest.fixture(scope="module")
def digits_client(hub_client):
    if digits_tab not in hub.TABS:
        pytest.fail("apps.digits_tab is not in apps.hub.TABS: register it")
    return hub_client


def _digits(client, **kw):
    return client.predict(**dict(digits_tab.ENDPOINT.defaults, **kw), api_name="/" + digits_tab.API_NAME)


@pytest.mark.parametrize("solver, steps, nfe", [("dpm++2m", 20, 20), ("heun", 6, 11), ("ddim", 10, 10)])
def test_digits_accuracy_is_the_share_of_matching_readings(digits_client, solver, steps, nfe):
    fig, values, note = _digits(digits_client, digit=7, solver=solver, steps=steps, rows=2)
    _png(fig)
    assert values["nfe"] == nfe and values["count"] == 16 and len(values["predicted"]) == 16
    hits = sum(p == 7 for p in values["predicted"])
    assert values["accuracy"] == pytest.approx(hits / 16)
    assert sum(values["predicted_counts"]) == 16 and values["predicted_counts"][7] == hits
    assert f"{hits} of 16" in note


def test_digits_dpm_at_20_steps_mostly_reads_as_asked(digits_client):
    _, values, _ = _digits(digits_client, digit=3, solver="dpm++2m", steps=20, rows=4)
    assert values["accuracy"] >= 0.75


@pytest.mark.parametrize("kw, message", [
    (dict(digit=10), "digit must be a whole number in 0..9"), (dict(rows=5), "rows must be"),
    (dict(solver="rk4"), "solver must be one of"), (dict(steps=21), "steps must be"),
])
def test_digits_refuses_out_of_bounds_inputs(digits_client, kw, message):
    with pytest.raises(AppError, match=message):
        _digits(digits_client, **kw)
