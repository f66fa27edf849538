"""The demo hub: one ``gr.Blocks`` with one tab per demo module.

Run it with ``python -m apps.hub`` (or ``make demo``): it serves http://127.0.0.1:7860.
A new demo is added by appending its module to ``TABS``; a module exposes ``TITLE`` and
``build()``.

Every event goes through a bounded queue: at most ``CONCURRENCY`` events of one kind run at
once, at most ``MAX_QUEUE`` wait; a request beyond that is refused with "queue full".
"""

from __future__ import annotations

import argparse
import os
import types

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a closed network

import gradio as gr  # noqa: E402
import torch  # noqa: E402

from apps import (  # noqa: E402
    digits_tab,
    dllm_tab,
    fewstep_tab,
    guidance_tab,
    inverse_tab,
    learned_tab,
    paths_tab,
    samplers_tab,
)

#: the tabs, in order; append a module to add a demo
TABS = [paths_tab, samplers_tab, learned_tab, digits_tab, guidance_tab, inverse_tab, fewstep_tab, dllm_tab]

CONCURRENCY = 2  # events of one endpoint computed at once (the machine has 2 cores)
MAX_QUEUE = 64  # requests waiting beyond that; more are refused
HOST, PORT = "127.0.0.1", 7860

# System fonts only: the default theme would ask Google Fonts, which a closed network cannot reach.
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "sans-serif"],
    font_mono=["ui-monospace", "monospace"],
)

INTRO = (
    "# diffkit demos\n"
    "Exact, CPU-sized pictures of diffusion models from the `diffkit` engine. "
    "Every input is bounded; each interaction answers in about a second."
)


def _copy_block_configs(configs: dict) -> dict:
    """A session's own copy of the per-block configs: gradio rewrites a block's ``props`` entry
    (its ``value``) in place, so each block's dict and its ``props`` are copied; the values
    inside are replaced, never mutated, and are shared."""
    out = {}
    for key, config in configs.items():
        config = dict(config)
        if isinstance(config.get("props"), dict):
            config["props"] = dict(config["props"])
        out[key] = config
    return out


def share_session_config(demo: gr.Blocks) -> gr.Blocks:
    """Let new sessions of ``demo`` copy one template of the per-block configs instead of
    rebuilding it.

    gradio builds, for every new session (every API call without a session, every page
    opened), each block's config afresh (``SessionState.__init__``: ``config_for_block`` over
    all blocks, with their API descriptions). For this hub that is about 20 ms of CPU per
    session, most of the server's time in a burst of cached requests. The configs at the
    start of a session depend only on the app's blocks, so the first session's are kept as a
    template (for the app's current ``default_config``) and later sessions copy it. Only apps
    passed here are affected; ``SessionState``'s own ``__init__`` still sets up every other
    field. If gradio's ``SessionState`` no longer has the shape this relies on, nothing is
    patched.
    """
    from gradio import state_holder

    cls = getattr(state_holder, "SessionState", None)
    if cls is None or not hasattr(demo, "default_config"):
        return demo
    if not hasattr(cls, "_diffkit_plain_init"):
        plain = cls.__init__

        def init(self, blocks):
            if not getattr(blocks, "_diffkit_share_config", False):
                return plain(self, blocks)
            kept = getattr(blocks, "_diffkit_session_template", None)
            if kept is None or kept[0] is not blocks.default_config:
                plain(self, blocks)
                blocks._diffkit_session_template = (
                    blocks.default_config, _copy_block_configs(self.config_values))
                return None
            # gradio's own __init__ for every other field, over no blocks (cheap) ...
            plain(self, types.SimpleNamespace(default_config=blocks.default_config, blocks={}))
            # ... and the template for the blocks' configs
            self.config_values = _copy_block_configs(kept[1])
            return None

        cls._diffkit_plain_init = plain
        cls.__init__ = init
    demo._diffkit_share_config = True
    return demo


def build_hub(tabs=None) -> gr.Blocks:
    """The hub: a ``gr.Blocks`` holding one tab per module of ``tabs`` (default ``TABS``),
    with its queue configured (``CONCURRENCY`` at once, at most ``MAX_QUEUE`` waiting) and its
    sessions starting from one shared config template (:func:`share_session_config`)."""
    tabs = TABS if tabs is None else tabs
    with gr.Blocks(title="diffkit demos") as demo:
        gr.Markdown(INTRO)
        with gr.Tabs(overflow_behavior="wrap"):  # every tab stays visible at 800 px
            for module in tabs:
                with gr.Tab(module.TITLE):
                    module.build()
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=MAX_QUEUE)
    return share_session_config(demo)


def launch(demo: gr.Blocks, host: str | None = HOST, port: int | None = PORT, **kwargs):
    """Serve ``demo`` with the hub's theme (``host=None`` lets Gradio read GRADIO_SERVER_NAME).

    Sets torch's intra-op threads to cores / ``CONCURRENCY``: events run side by side, and
    several threads per event on a small CPU spin more than they compute.
    """
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // CONCURRENCY))
    return demo.launch(server_name=host, server_port=port, theme=THEME, show_error=True, **kwargs)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="diffkit demo hub")
    parser.add_argument("--host", default=HOST, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=PORT, help="port (default 7860)")
    args = parser.parse_args(argv)
    launch(build_hub(), args.host, args.port)


if __name__ == "__main__":
    main()
