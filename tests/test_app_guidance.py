"""The Guidance tab through gradio_client against the hub: exact identities of CFG seen through
its endpoint, and its input bounds."""

from __future__ import annotations

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from apps import guidance_tab, hub

pytestmark = [pytest.mark.app, pytest.mark.timeout(180)]

TABS_UNDER_TEST = [guidance_tab]  # served alone (fixture tabs_url); registration in the hub is asserted
API = "/" + guidance_tab.API_NAME


@pytest.fixture(scope="module")
def client(tabs_url):
    assert guidance_tab in hub.TABS
    return Client(tabs_url, verbose=False)


def test_default_view_and_scale_zero_ignores_the_class(client):
    """The default run reports its inputs and twice the solver's NFE (two denoisers per call); at
    scale 0 CFG is the unconditional denoiser, so class 0 and class 1 give the same samples."""
    _, _, values = client.predict(api_name=API)
    assert values["scale"] == guidance_tab.DEFAULT["scale"] and values["steps"] == guidance_tab.DEFAULT["steps"]
    assert values["nfe_per_sample"] == 2 * guidance_tab.DEFAULT["steps"]
    assert 0.0 <= values["coverage"] <= values["precision"] <= 1.0
    a = client.predict(scale=0.0, label="0", api_name=API)[2]
    b = client.predict(scale=0.0, label="1", api_name=API)[2]
    assert a["mean"] == b["mean"]


def test_guidance_trades_coverage_for_precision(client):
    """From the conditional model (scale 1) to scale 4 coverage falls."""
    one = client.predict(scale=1.0, api_name=API)[2]
    four = client.predict(scale=4.0, api_name=API)[2]
    assert four["coverage"] < one["coverage"]


def test_bounds_are_refused_by_the_api(client):
    with pytest.raises(AppError, match="scale"):
        client.predict(scale=7.5, api_name=API)
    with pytest.raises(AppError, match="steps"):
        client.predict(steps=1, api_name=API)
    with pytest.raises(AppError, match="solver"):
        client.predict(solver="adaptive", api_name=API)
