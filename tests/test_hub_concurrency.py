"""The hub's requests run side by side: new sessions copy one template of the per-block configs
(``apps.hub.share_session_config``) instead of rebuilding it, and must start with exactly what
gradio would have built and stay apart; tab computations, which draw with matplotlib, never run
at the same time (``apps.widgets.PLOTTING``)."""

from __future__ import annotations

import threading
import time

import gradio as gr
import pytest
from gradio.state_holder import SessionState

from apps import hub
from apps import widgets as w

pytestmark = pytest.mark.app


def _small_app(shared: bool) -> gr.Blocks:
    with gr.Blocks() as demo:
        with gr.Tab("a"):
            number = gr.Number(value=3, minimum=0, maximum=9, label="n")
            text = gr.Textbox(value="hello", label="t")
            gr.Button("go").click(lambda n, t: (n + 1, t + "!"), [number, text], [number, text],
                                  api_name="go")
        with gr.Tab("b"):
            gr.Slider(0, 1, value=0.5, label="s")
            gr.Dropdown(["x", "y"], value="x", label="d")
    demo.queue()
    return hub.share_session_config(demo) if shared else demo


def _plain(blocks) -> SessionState:
    """A session built by gradio's own ``__init__``, whatever is patched."""
    state = SessionState.__new__(SessionState)
    getattr(SessionState, "_diffkit_plain_init", SessionState.__init__)(state, blocks)
    return state


def test_template_sessions_equal_what_gradio_builds():
    demo = _small_app(shared=True)
    first, second = SessionState(demo), SessionState(demo)  # the second copies the template
    assert demo._diffkit_session_template[0] is demo.default_config
    reference = _plain(demo)
    assert second.config_values == reference.config_values == first.config_values
    assert list(second.components) == list(reference.components)
    assert second.state_data == {} and not second.is_closed
    assert second.blocks_config is not first.blocks_config


def test_template_sessions_stay_apart():
    """A value written into one session's config (what gradio does when an event updates a
    component) shows in that session only: not in the template, not in other sessions."""
    demo = _small_app(shared=True)
    SessionState(demo)
    one, two = SessionState(demo), SessionState(demo)
    key = next(k for k, c in one.config_values.items() if c.get("props", {}).get("value") == 3)
    one._update_value_in_config(key, 7)
    assert one.config_values[key]["props"]["value"] == 7
    assert two.config_values[key]["props"]["value"] == 3
    assert SessionState(demo).config_values[key]["props"]["value"] == 3


def test_apps_not_flagged_are_built_by_gradio():
    hub.share_session_config(_small_app(shared=True))  # the patch is in place
    demo = _small_app(shared=False)
    SessionState(demo)
    assert not hasattr(demo, "_diffkit_session_template")
    assert SessionState(demo).config_values == _plain(demo).config_values


def test_tab_computations_never_overlap():
    """Two endpoints hit by eight threads at once (distinct inputs, nothing cached): at most one
    computation is inside ``compute`` at any moment, and each answer is its own."""
    inside, most = [0], [0]
    count = threading.Lock()

    def compute(t):
        with count:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.01)
        with count:
            inside[0] -= 1
        return ({"t": t},)

    specs = [w.Numeric("t", 0.0, 1.0, 0.5, step=0.01)]
    endpoints = [w.Endpoint(compute, specs, api_name=f"e{i}") for i in range(2)]
    answers = {}
    gate = threading.Barrier(8)

    def one(i):
        gate.wait()
        answers[i] = endpoints[i % 2].run(t=i / 10)[0]["t"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert answers == {i: i / 10 for i in range(8)}
    assert most[0] == 1
