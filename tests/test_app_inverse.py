"""The Inverse problems tab through gradio_client: inpainting a test digit by replacement and DPS
behind its endpoint, what a mask with nothing hidden gives back, and the input bounds."""

from __future__ import annotations

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from apps import hub, inverse_tab

pytestmark = [pytest.mark.app, pytest.mark.timeout(180)]

TABS_UNDER_TEST = [inverse_tab]  # served alone (fixture tabs_url); registration in the hub is asserted
API = "/" + inverse_tab.API_NAME


@pytest.fixture(scope="module")
def client(tabs_url):
    assert inverse_tab in hub.TABS
    return Client(tabs_url, verbose=False)


def test_default_view_reports_both_methods(client):
    """The default run: the right half of test digit 3 hidden (32 pixels), four completions per
    method, the NFE of each (replacement: (steps - 1) x jumps + 1; DPS: steps)."""
    _, values, note = client.predict(api_name=API)
    d = inverse_tab.DEFAULT
    assert (values["index"], values["mask"], values["steps"]) == (d["index"], d["mask"], d["steps"])
    assert values["hidden"] == 32
    assert values["replacement"]["nfe"] == (d["steps"] - 1) * d["jumps"] + 1
    assert values["dps"]["nfe"] == d["steps"]
    for key in ("replacement", "dps"):
        assert len(values[key]["predicted"]) == inverse_tab.SAMPLES and 0.0 < values[key]["mse"] < 4.0
    assert "hidden" in note


def test_a_drawn_mask_hiding_nothing_gives_the_digit_back(client):
    """Nothing hidden: both methods return the digit itself, so the classifier reads the same
    label in every completion as in the digit; jumps change replacement's NFE only."""
    values = client.predict(mask="drawn", drawn="0" * 64, jumps=2, api_name=API)[1]
    assert values["hidden"] == 0
    for key in ("replacement", "dps"):
        assert values[key]["mse"] is None
        assert values[key]["predicted"] == [values["seen_alone_predicted"]] * inverse_tab.SAMPLES
    assert values["replacement"]["nfe"] == 2 * (inverse_tab.DEFAULT["steps"] - 1) + 1
    drawn = client.predict(mask="drawn", drawn="1" * 8 + "0" * 56, api_name=API)[1]
    assert drawn["hidden"] == 8


def test_bounds_are_refused_by_the_api(client):
    with pytest.raises(AppError, match="index"):
        client.predict(index=inverse_tab.N_TEST, api_name=API)
    with pytest.raises(AppError, match="steps"):
        client.predict(steps=inverse_tab.MAX_STEPS + 1, api_name=API)
    with pytest.raises(AppError, match="jumps"):
        client.predict(jumps=0, api_name=API)
    with pytest.raises(AppError, match="mask"):
        client.predict(mask="left half", api_name=API)
    with pytest.raises(AppError, match="drawn"):
        client.predict(mask="drawn", drawn="01" * 10, api_name=API)
    with pytest.raises(AppError, match="every pixel"):
        client.predict(mask="drawn", drawn="1" * 64, api_name=API)


def test_painted_layers_become_the_mask():
    """The editor's painted layer, 32 editor pixels per digit pixel: a block at least a fifth
    painted is hidden; nothing painted is no mask."""
    import numpy as np

    size = 8 * inverse_tab.SCALE
    layer = np.zeros((size, size, 4), dtype=np.uint8)
    layer[:32, :64, 3] = 255           # the first two pixels of the top row, fully
    layer[32:64, 32:40, 3] = 255       # a quarter of pixel (1, 1)
    layer[64:96, 0:4, 3] = 255         # an eighth of pixel (2, 0): not enough
    bits = inverse_tab.painted_bits({"background": None, "layers": [layer], "composite": None})
    assert bits[:2] == "11" and bits[9] == "1" and bits[16] == "0" and bits.count("1") == 3
    assert inverse_tab.painted_bits({"background": None, "layers": [], "composite": None}) is None
    mask = inverse_tab.bits_to_mask(bits)
    assert inverse_tab.mask_to_bits(mask) == bits and int((~mask).sum()) == 3


def test_a_painted_stroke_runs_with_the_drawn_mask():
    """The editor's input handler of the built tab: a layer painted over the top row of the digit
    runs both methods with that row hidden (mask 'drawn', its bits written into the text box);
    an empty layer changes nothing."""
    import gradio as gr
    import numpy as np

    demo = hub.build_hub([inverse_tab])
    fns = demo.fns.values() if isinstance(demo.fns, dict) else demo.fns
    handler = next(f.fn for f in fns if getattr(f.fn, "__name__", "") == "from_drawing")
    d = inverse_tab.DEFAULT
    args = [d[n] for n in inverse_tab.ENDPOINT.names] + [dict(d)]
    size = 8 * inverse_tab.SCALE
    layer = np.zeros((size, size, 4), dtype=np.uint8)
    layer[: inverse_tab.SCALE, :, 3] = 255
    value = inverse_tab.editor_value(d["index"]) | {"layers": [layer]}
    out = handler(value, *args)
    values, names = out[1], inverse_tab.ENDPOINT.names
    assert values["mask"] == "drawn" and values["hidden"] == 8
    assert out[3 + names.index("mask")] == "drawn" and out[3 + names.index("drawn")] == "1" * 8 + "0" * 56
    empty = handler(inverse_tab.editor_value(d["index"]) | {"layers": [np.zeros_like(layer)]}, *args)
    assert len(empty) == len(out) and all(o == gr.skip() for o in empty)  # nothing is run
