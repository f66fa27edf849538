"""The Few-step tab through gradio_client: the shipped model against its teacher, and bounds."""

from __future__ import annotations

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from apps import fewstep_tab, hub

pytestmark = [pytest.mark.app, pytest.mark.timeout(180)]

TABS_UNDER_TEST = [fewstep_tab]  # served alone (fixture tabs_url); registration in the hub is asserted
API = "/" + fewstep_tab.API_NAME


@pytest.fixture(scope="module")
def client(tabs_url):
    assert fewstep_tab in hub.TABS
    return Client(tabs_url, verbose=False)


def test_one_call_of_the_flow_map_beats_one_euler_call_of_its_teacher(client):
    """With one call the teacher's Euler step lands on the mixture's mean region; the distilled
    flow map reaches the modes: its W2 to data is several times smaller."""
    _, values = client.predict(steps=1, api_name=API)
    w2 = values["w2"]
    ours = w2["flow map, 1 call(s)"]
    assert 3 * ours < w2["teacher (euler), 1 call(s)"]
    assert values["w2_data_vs_data"] < w2["teacher (dpm++2m), 100 calls"] + 0.1


def test_bounds_are_refused_by_the_api(client):
    with pytest.raises(AppError, match="steps"):
        client.predict(steps=9, api_name=API)
    with pytest.raises(AppError, match="model"):
        client.predict(model="teacher", api_name=API)
