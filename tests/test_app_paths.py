"""The Paths tab: its endpoint called with gradio_client against the hub on 127.0.0.1, its
queue under 20 concurrent requests, its input bounds, and the exact figures it reports.

The figures checked are closed form: ``alpha``, ``sigma``, ``logsnr`` of the path at ``t``; the
grid density of the marginal ``p_t`` has mass 1 (up to truncation) and mean
``alpha(t) * E[x0]`` (the mean of ``x_t = alpha x0 + sigma eps``).
"""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from apps import hub, paths_tab
from diffkit import paths

pytestmark = [pytest.mark.app, pytest.mark.timeout(120)]

API = "/" + paths_tab.API_NAME


@pytest.fixture(scope="module")
def client(hub_url):
    return Client(hub_url, verbose=False)


def _image(plot) -> bytes:
    """The image bytes of a gr.Plot output (a matplotlib figure sent as a data URL), checked to
    be a whole WebP file (RIFF header whose length field counts the rest of the file)."""
    assert plot["type"] == "matplotlib"
    head, data = plot["plot"].split(",", 1)
    assert head == f"data:image/{paths_tab.PLOT_FORMAT};base64"
    raw = base64.b64decode(data)
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WEBP"
    assert int.from_bytes(raw[4:8], "little") == len(raw) - 8
    return raw


def _check_exact(values: dict, path_name: str, t: float) -> None:
    path = paths.get(path_name)
    # printed to paths_tab.DIGITS = 6 significant digits: relative error at most 5e-6
    assert values["path_name"] == path_name and values["t"] == t
    assert values["alpha"] == pytest.approx(float(path.alpha(t)), rel=5e-6, abs=1e-15)
    assert values["sigma"] == pytest.approx(float(path.sigma(t)), rel=5e-6, abs=1e-15)
    lam = float(path.logsnr(t))
    if math.isfinite(lam):
        assert values["logsnr"] == pytest.approx(lam, rel=5e-6, abs=1e-12)
    else:
        assert values["logsnr"] == ("+inf" if lam > 0 else "-inf")
    # the exact density on the fixed grid: a probability density, centred at alpha * E[x0]
    assert values["grid"] == paths_tab.GRID
    assert values["mass"] == pytest.approx(1.0, abs=5e-4)
    data = paths_tab.mixture(values["mixture"])
    exact_mean = (float(path.alpha(t)) * (data.weights[:, None] * data.means).sum(0)).tolist()
    assert values["exact_mean"] == pytest.approx(exact_mean, rel=5e-6, abs=1e-12)
    assert values["mean"] == pytest.approx(exact_mean, abs=2e-3)


@pytest.mark.parametrize("path_name", paths.NAMES)
def test_endpoint_reports_the_exact_path(client, path_name):
    t = 0.37
    sched, dens, values, note = client.predict(path_name, "three anisotropic", t, False,
                                               api_name=API)
    assert len(_image(sched)) > 1000 and len(_image(dens)) > 1000
    _check_exact(values, path_name, t)
    if path_name.startswith("vp"):  # variance preserving: alpha^2 + sigma^2 = 1
        assert values["alpha"] ** 2 + values["sigma"] ** 2 == pytest.approx(1.0, abs=2e-6)
    assert f"{values['alpha']:.4g} x0" in note


def test_endpoints_of_the_hub():
    """Every tab module exposes TITLE and build(); the Paths tab is mounted under its API name."""
    for module in hub.TABS:
        assert isinstance(module.TITLE, str) and callable(module.build)
    assert paths_tab in hub.TABS


def test_twenty_concurrent_requests_all_succeed(client):
    """20 requests at once: every one answers with its own t, and the queue never runs more
    than hub.CONCURRENCY of them at the same time (the intervals each run reports overlap at
    most that many deep)."""
    ts = [round(i / 19, 6) for i in range(20)]
    jobs = [client.submit(paths.NAMES[i % 5], list(paths_tab.PRESETS)[i % 3], t, i % 5 == 0,
                          api_name=API) for i, t in enumerate(ts)]
    results = [job.result(timeout=90) for job in jobs]
    assert len(results) == 20
    for i, (t, res) in enumerate(zip(ts, results)):
        _check_exact(res[2], paths.NAMES[i % 5], t)
    events = sorted([(r[2]["started_at"], 1) for r in results]
                    + [(r[2]["finished_at"], -1) for r in results])
    depth = peak = 0
    for _, step in events:  # at equal times an end sorts before a start
        depth += step
        peak = max(peak, depth)
    assert 1 <= peak <= hub.CONCURRENCY


@pytest.mark.parametrize("t, shown", [(1.5, "1.5"), (-0.25, "-0.25"), ("nan", "nan")])
def test_out_of_range_t_is_refused_by_the_api_and_says_why(client, t, shown):
    """The API is strict: a t the page would clamp is refused, with one plain sentence."""
    with pytest.raises(AppError, match=rf"t must be a number in \[0, 1\]; got {shown}$"):
        client.predict(path="linear", mixture="two blobs", t=t, compare=False, api_name=API)


@pytest.mark.parametrize("kwargs, message", [
    (dict(path="vp-quadratic"), "path must be one of vp-linear, .*; got 'vp-quadratic'"),
    (dict(mixture="spiral"), "mixture must be one of two blobs, .*; got 'spiral'"),
    (dict(compare="yes"), "compare must be true or false; got 'yes'"),
])
def test_unknown_choices_are_refused(client, kwargs, message):
    with pytest.raises(AppError, match=message):
        client.predict(**dict(paths_tab.ENDPOINT.defaults, **kwargs), api_name=API)


def test_named_api_by_keyword(client):
    """view_api() names every parameter and output; a call by keyword (others at their
    defaults) answers for what it was asked."""
    info = client.view_api(return_format="dict", print_info=False)["named_endpoints"][API]
    assert [p["parameter_name"] for p in info["parameters"]] == ["path", "mixture", "t",
                                                                  "compare"]
    assert all(p["label"] for p in info["parameters"])
    assert [r["label"] for r in info["returns"]] == ["schedule", "exact marginal density p_t",
                                                     "exact values at t", "note"]
    *_, values, note = client.predict(t=0.6, path="edm", api_name=API)
    _check_exact(values, "edm", 0.6)
    assert values["mixture"] == paths_tab.DEFAULT["mixture"]


def test_pure_function_is_strict():
    """compute() takes only valid inputs (the page clamps before it runs, the API refuses)."""
    with pytest.raises(ValueError, match=r"t must be a number in \[0, 1\]; got 1.7"):
        paths_tab.compute("linear", "ring of eight", 1.7)
    with pytest.raises(ValueError, match=r"t must be a number in \[0, 1\]; got nan"):
        paths_tab.compute("edm", "two blobs", float("nan"))
    with pytest.raises(ValueError, match="path must be one of"):
        paths_tab.compute("cosine", "two blobs", 0.5)
    with pytest.raises(ValueError, match="mixture must be one of"):
        paths_tab.compute("edm", "spiral", 0.5)
    _, _, values, _ = paths_tab.compute("linear", "ring of eight", 1)
    _check_exact(values, "linear", 1.0)


def test_ui_states_every_bound(hub_url):
    """The served page declares the bounds: slider [0, 1] with a note, fixed choices, a queue
    with a concurrency limit and a bounded size."""
    import httpx

    cfg = httpx.get(hub_url + "config", timeout=10).json()
    props = {c["props"].get("elem_id"): c for c in cfg["components"]}
    slider = props["paths-t"]["props"]
    assert (slider["minimum"], slider["maximum"]) == (0.0, 1.0)
    assert "a number in [0, 1]" in slider["info"]
    assert f"{paths_tab.GRID} x {paths_tab.GRID}" in slider["info"]
    for elem_id, allowed in (("paths-path", paths.NAMES), ("paths-mixture", paths_tab.PRESETS)):
        assert [v for _, v in props[elem_id]["props"]["choices"]] == list(allowed)
    demo = hub.build_hub(tabs=[])  # the queue settings alone, without building the tabs again
    assert demo._queue.max_size == hub.MAX_QUEUE
    assert demo._queue.default_concurrency_limit == hub.CONCURRENCY


def test_every_path_and_preset_is_exact_on_the_grid():
    """The density grid of every (path, mixture) pair integrates to 1 and is centred at
    alpha(t) E[x0], from data (t = 0) to prior (t = 1)."""
    for path_name in paths.NAMES:
        for preset in paths_tab.PRESETS:
            for t in (0.0, 0.5, 1.0):
                values, _ = paths_tab.exact_values(path_name, preset, t)
                _check_exact(values, path_name, t)
    assert torch.get_default_dtype() == torch.float32  # the app did not change global state


def test_viz_draws_what_lessons_and_apps_share():
    """diffkit.viz: three schedule panels per call; the density grid of a Gaussian equals its
    closed-form density, cell by cell, and holds its whole mass."""
    from matplotlib.figure import Figure

    from diffkit import analytic, viz

    fig = viz.plot_schedule(list(paths.NAMES), t=0.5)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert len(fig.axes[0].get_lines()) == len(paths.NAMES) + 1 + len(paths.NAMES)  # + t line, dots
    with pytest.raises(ValueError, match="path must be one of"):
        viz.plot_schedule("vp-quadratic")

    g = analytic.Gaussian(torch.tensor([0.5, -1.0], dtype=torch.float64),
                          torch.tensor([[0.6, 0.2], [0.2, 0.3]], dtype=torch.float64))
    extent = viz.density_extent(g, width=6.0)
    xs, ys, dens = viz.density_grid(g, extent, 96)
    cov = g.cov.numpy()
    d = np.array([xs[10] - 0.5, ys[40] + 1.0])
    exact = math.exp(-0.5 * d @ np.linalg.solve(cov, d)) / (
        2 * math.pi * math.sqrt(np.linalg.det(cov)))
    assert dens[40, 10] == pytest.approx(exact, rel=1e-12)
    assert dens.sum() * (xs[1] - xs[0]) * (ys[1] - ys[0]) == pytest.approx(1.0, abs=1e-6)

    fig = viz.plot_marginal_density(paths_tab.mixture("ring of eight"), 0.4, "vp-cosine", n=64)
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # the density and its colour bar
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("$x_1$", "$x_2$")
