"""diffkit's Gradio demos: one module per tab, mounted together by :mod:`apps.hub`.

A tab module exposes ``TITLE`` (the tab's label) and ``build()`` (lays out its components and
wires its events inside the current ``gr.Blocks``). Apps import only diffkit's public API.
"""
