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


def build_hub(tabs=None) -> gr.Blocks:
    """The hub: a ``gr.Blocks`` holding one tab per module of ``tabs`` (default ``TABS``),
    with its queue configured (``CONCURRENCY`` at once, at most ``MAX_QUEUE`` waiting)."""
    tabs = TABS if tabs is None else tabs
    with gr.Blocks(title="diffkit demos") as demo:
        gr.Markdown(INTRO)
        with gr.Tabs(overflow_behavior="wrap"):  # every tab stays visible at 800 px
            for module in tabs:
                with gr.Tab(module.TITLE):
                    module.build()
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=MAX_QUEUE)
    return demo


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
