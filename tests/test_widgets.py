"""The shared tab helpers (apps.widgets): input specs clamp or refuse with one plain message,
the endpoint's cache is keyed by the validated inputs and bounded, the page handler keeps the
last valid run on a refusal, and the named API takes its parameters by keyword.

Properties are checked over random inputs (hypothesis): a clamped value always lies in the
bounds and equals the input when the input already did; an integer spec never returns a value
that is not whole.
"""

from __future__ import annotations

import math

import gradio as gr
import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps import widgets as w

SPECS = [
    w.Choice("shape", ("disc", "square"), "disc"),
    w.Numeric("t", 0.0, 1.0, 0.25, step=0.01),
    w.Numeric("seed", 0, 99, 3, integer=True),
    w.Flag("big", False),
]


def _area(shape, t, seed, big):
    return ({"shape": shape, "t": t, "seed": seed, "big": big,
             "value": (math.pi if shape == "disc" else 4.0) * t * (2 if big else 1) + seed},)


@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_numeric_clamps_into_its_bounds(x):
    spec = SPECS[1]
    v, note = spec.check(x, clamp=True)
    assert 0.0 <= v <= 1.0
    if 0.0 <= x <= 1.0:
        assert v == x and note == ""
    else:
        assert v == (0.0 if x < 0 else 1.0) and "outside [0, 1]" in note and "ran" in note
        with pytest.raises(w.Rejected, match=r"t must be a number in \[0, 1\]"):
            spec.check(x, clamp=False)


@given(st.one_of(st.integers(-10**6, 10**6), st.floats(-1e6, 1e6)))
def test_integer_spec_returns_whole_numbers_or_refuses(x):
    spec = SPECS[2]
    if float(x) != math.floor(float(x)):
        with pytest.raises(w.Rejected, match="not whole"):
            spec.check(x)
        return
    v, _ = spec.check(x)
    assert isinstance(v, int) and 0 <= v <= 99 and (v == x or not 0 <= x <= 99)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), None, "", "abc",
                                 True, [1], "3.7"])
def test_non_numbers_are_refused_naming_the_input(bad):
    with pytest.raises(w.Rejected, match=r"^seed must be a whole number in 0\.\.99; got"):
        SPECS[2].check(bad)


def test_strings_that_are_numbers_are_read():
    assert SPECS[1].check(" 0.5 ") == (0.5, "")
    assert SPECS[2].check("7") == (7, "")
    assert SPECS[2].check(7.0) == (7, "")


def test_choice_and_flag_refuse_anything_else():
    with pytest.raises(w.Rejected, match="shape must be one of disc, square; got 'circle'"):
        SPECS[0].check("circle")
    with pytest.raises(w.Rejected, match="big must be true or false"):
        SPECS[3].check(1)
    with pytest.raises(ValueError, match="bounds"):
        w.Numeric("x", 1.0, 0.0, 0.5)
    with pytest.raises(w.Rejected):  # a default outside the bounds fails at definition
        w.Numeric("x", 0.0, 1.0, 2.0)


def test_cache_is_keyed_by_validated_inputs_and_bounded():
    calls = []

    def compute(shape, t, seed, big):
        calls.append((shape, t, seed, big))
        return _area(shape, t, seed, big)

    ep = w.Endpoint(compute, SPECS, api_name="area", cache_size=4)
    first = ep.default_view()
    assert first[0]["value"] == pytest.approx(math.pi * 0.25 + 3) and len(calls) == 1
    # "3", 3.0 and 3 validate to the same key: one computation
    assert ep.run(seed="3") == first and ep.run(seed=3.0) == first and len(calls) == 1
    first[0]["value"] = -1.0  # a caller changing its copy does not change the cache
    assert ep.default_view()[0]["value"] == pytest.approx(math.pi * 0.25 + 3)
    for s in range(10):
        ep.run(seed=s)
    info = ep.cache_info()
    assert info.maxsize == 4 and info.currsize == 4
    with pytest.raises(w.Rejected, match=r"t must be a number in \[0, 1\]; got 2"):
        ep.run(t=2.0)  # strict: the API never clamps
    with pytest.raises(w.Rejected, match="unknown input"):
        ep.run(radius=1.0)


def test_figures_are_encoded_once():
    from matplotlib.figure import Figure

    def compute(shape, t, seed, big):
        fig = Figure(figsize=(2, 2))
        fig.subplots().plot([0, t], [0, seed])
        return fig, {"t": t}

    ep = w.Endpoint(compute, SPECS, api_name="fig", plot_format="webp")
    plot, values = ep.default_view()
    assert plot.type == "matplotlib" and plot.plot.startswith("data:image/webp;base64,")
    assert ep.default_view()[0] is plot  # the same encoded image, not a new drawing


def test_page_handler_clamps_refuses_and_keeps_the_last_run(monkeypatch):
    warned = []
    monkeypatch.setattr(gr, "Warning", lambda msg, *a, **k: warned.append(msg))
    ep = w.Endpoint(_area, SPECS, api_name="area")
    with gr.Blocks():
        comps = {"shape": SPECS[0].dropdown(), "t": SPECS[1].slider(),
                 "seed": SPECS[2].number(), "big": SPECS[3].checkbox()}
        out = gr.JSON()
        ep.wire(comps, [out])
    page = ep.page_function(comps)
    last = dict(ep.defaults)
    # out of range: clamped, run, the slider shows what was run, the others are not rewritten
    res = page("square", -3, 5, False, last)
    assert res[0]["t"] == 0.0 and res[0]["value"] == 5
    assert res[1:5] == [gr.skip(), 0.0, gr.skip(), gr.skip()] and res[5]["t"] == 0.0
    assert warned == ["t = -3 is outside [0, 1]: ran 0 instead."]
    # not whole: refused, every output kept, the box shows the last valid seed again
    res = page("square", 0.5, 3.7, False, {**last, "seed": 5})
    assert res[0] == gr.skip() and res[3] == 5 and res[5]["seed"] == 5
    # the whole run is refused: every box shows the last run's value again
    assert res[1] == "disc" and res[2] == 0.25
    assert "seed must be a whole number in 0..99; got 3.7, which is not whole" in warned[-1]
    # gradio's own bound checks are off: the raw value reaches the spec
    assert comps["t"].preprocess(-3) == -3 and comps["seed"].preprocess(3.7) == 3.7
    # ... and stay off in the copy gradio builds of a component after an update for it
    # (gr.skip(), gr.update(visible=...)): type(component)(**constructor_args)
    for name, raw in (("t", -3), ("seed", 3.7), ("shape", "circle"), ("big", 1)):
        comp = comps[name]
        rebuilt = type(comp)(**{**comp.constructor_args, "render": False})
        assert rebuilt.preprocess(raw) == raw
        assert rebuilt.get_block_name() == type(comp).__mro__[1].__name__.lower()
    # a keystroke in a slider's box (the page sends TYPING): nothing runs, nothing is said
    n_warned = len(warned)
    res = page("square", w.TYPING, 5, False, last)
    assert res == [gr.skip()] * 6 and len(warned) == n_warned


def test_api_function_has_named_parameters_and_refuses_strictly():
    import inspect

    ep = w.Endpoint(_area, SPECS, api_name="area")
    api = ep.api_function()
    sig = inspect.signature(api)
    assert list(sig.parameters) == ["shape", "t", "seed", "big"]
    assert sig.parameters["t"].default == 0.25
    assert api("disc", 0.5, 0, True)["value"] == pytest.approx(math.pi)
    with pytest.raises(gr.Error, match="seed must be a whole number"):
        api("disc", 0.5, 1e9, True)


def test_presets_are_validated_at_definition():
    ep = w.Endpoint(_area, SPECS, api_name="area")
    with gr.Blocks():
        comps = {"shape": SPECS[0].dropdown(), "t": SPECS[1].slider(),
                 "seed": SPECS[2].number(), "big": SPECS[3].checkbox()}
        ep.wire(comps, [gr.JSON()])
        dd = ep.presets({"small square": {"shape": "square", "t": 0.1}})
        assert dd.choices == [("small square", "small square")]
        with pytest.raises(w.Rejected, match="t must be"):
            ep.presets({"bad": {"t": 5.0}})


def test_served_api_is_named_and_refuses_with_the_plain_message():
    """Served for real: view_api() lists the specs' names, a call by keyword runs, a refused
    value comes back as the spec's one sentence."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    ep = w.Endpoint(_area, SPECS, api_name="area")
    with gr.Blocks() as demo:
        comps = {"shape": SPECS[0].dropdown(label="shape"), "t": SPECS[1].slider(label="t"),
                 "seed": SPECS[2].number(label="seed"), "big": SPECS[3].checkbox(label="big")}
        ep.wire(comps, [gr.JSON(label="area values")])
    demo.queue()
    from conftest import free_port

    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1",
                            server_port=free_port(), quiet=True)
    try:
        client = Client(url, verbose=False)
        info = client.view_api(return_format="dict", print_info=False)
        (endpoint,) = info["named_endpoints"]
        assert endpoint == "/area"
        params = [p["parameter_name"] for p in info["named_endpoints"]["/area"]["parameters"]]
        assert params == ["shape", "t", "seed", "big"]
        assert [r["label"] for r in info["named_endpoints"]["/area"]["returns"]] == ["area values"]
        out = client.predict(shape="square", t=0.5, seed=2, big=True, api_name="/area")
        assert out["value"] == pytest.approx(6.0)
        with pytest.raises(AppError, match=r"t must be a number in \[0, 1\]; got 1.5"):
            client.predict(t=1.5, api_name="/area")
    finally:
        demo.close()


def test_view_control_clamps_refuses_and_says_so_once(monkeypatch):
    """A view control (re-draws the last run from its state) keeps the inputs' contract: a value
    out of bounds is clamped and shown, a value that is not whole is refused with the last value
    written back and the output kept, a keystroke does nothing; its API is strict."""
    warned = []
    monkeypatch.setattr(gr, "Warning", lambda msg, *a, **k: warned.append(msg))
    spec = w.Numeric("upto", 0, 4, 0, integer=True)
    view = w.View(lambda upto, record: f"{record['name']} up to {upto}", spec, api_name="cut")
    with gr.Blocks():
        comp = spec.slider(value=2, elem_id="cut-upto")
        state, out = gr.State({"name": "run"}), gr.HTML()
        view.wire(comp, [state], [out])
    page = view.page_function(1)
    assert page(9, 2, {"name": "run"}) == ["run up to 4", 4, 4]  # clamped, written back
    assert warned == ["upto = 9 is outside 0..4: ran 4 instead."]
    assert page(3, 4, {"name": "run"}) == ["run up to 3", gr.skip(), 3]  # the box already shows 3
    assert page(1.5, 3, {"name": "run"}) == [gr.skip(), 3, gr.skip()]  # refused: shows 3 again
    assert "upto must be a whole number in 0..4; got 1.5, which is not whole" in warned[-1]
    assert page(None, 3, {"name": "run"}) == [gr.skip(), 3, gr.skip()]  # an empty box
    n = len(warned)
    assert page(w.TYPING, 3, {"name": "run"}) == [gr.skip()] * 3 and len(warned) == n
    api = view.api_function()
    assert api(2, {"name": "run"}) == "run up to 2"
    with pytest.raises(gr.Error, match=r"upto must be a whole number in 0\.\.4; got 9"):
        api(9, {"name": "run"})
