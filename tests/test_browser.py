"""Browser test: the demo hub in headless Debian chromium, driven by Playwright's Python API.

Loads the hub, drags the Paths tab's t slider, checks that the exact-density plot and the exact
values re-render for the new t, and saves a screenshot to test-artifacts/hub_paths.png.
"""

from __future__ import annotations

import pytest

from diffkit import paths

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

TIMEOUT_MS = 30_000


def test_slider_rerenders_exact_density(browser, hub_url, artifacts, wait_for_json, wait_until_idle):
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(hub_url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
        density = page.locator("#paths-density img")
        density.wait_for(state="visible", timeout=TIMEOUT_MS)
        schedule = page.locator("#paths-schedule img")
        schedule.wait_for(state="visible", timeout=TIMEOUT_MS)
        before = density.get_attribute("src")
        assert before and before.startswith("data:image/webp;base64,")
        first = wait_for_json(page, "#paths-values", lambda v: True)
        assert first["t"] == 0.3 and first["path_name"] == "vp-cosine"

        # drag the t slider from its start to 80 % of its track
        track = page.locator("#paths-t input[type=range]")
        box = track.bounding_box()
        assert box is not None
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + 0.3 * box["width"], y)
        page.mouse.down()
        page.mouse.move(box["x"] + 0.8 * box["width"], y, steps=8)
        page.mouse.up()
        t_new = float(track.input_value())
        assert 0.6 < t_new < 0.95

        page.wait_for_function(
            "([sel, old]) => { const i = document.querySelector(sel);"
            " return i && i.getAttribute('src') && i.getAttribute('src') !== old; }",
            arg=["#paths-density img", before],
            timeout=TIMEOUT_MS,
        )
        # the values panel reports the new t and the closed-form alpha(t), sigma(t) of the path
        shown = wait_for_json(page, "#paths-values", lambda v: abs(v["t"] - t_new) < 1e-9)
        path = paths.get("vp-cosine")
        assert shown["alpha"] == pytest.approx(float(path.alpha(t_new)), rel=5e-6)  # 6 digits
        assert shown["sigma"] == pytest.approx(float(path.sigma(t_new)), rel=5e-6)
        assert page.locator("#paths-density img").get_attribute("src") != before

        wait_until_idle(page)
        page.screenshot(path=str(artifacts / "hub_paths.png"), full_page=True)
        assert not errors, errors
    finally:
        page.close()
