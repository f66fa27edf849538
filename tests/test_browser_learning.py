"""Browser test: the "Learned vs exact" and "Digits" tabs in headless Debian chromium at a wide
(1400 px) and a narrow (800 px) window: the default view is drawn on load, changing an input
re-renders the plots and the values panel reports the new run. Screenshots go to
test-artifacts/hub_learned_<width>.png and hub_digits_<width>.png.
"""

from __future__ import annotations

import pytest

from apps import digits_tab, hub, learned_tab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

TIMEOUT_MS = 60_000
TABS_TESTED = (learned_tab, digits_tab)


@pytest.fixture(params=[1400, 800], ids=["wide", "narrow"])
def page(request, browser, hub_url):
    for tab in TABS_TESTED:
        if tab not in hub.TABS:
            pytest.fail(f"{tab.__name__} is not in apps.hub.TABS: register it")
    pg = browser.new_page(viewport={"width": request.param, "height": 1500})
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.goto(hub_url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
    pg.width = request.param
    try:
        yield pg
    finally:
        pg.close()


def _pick(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_learned_tab_switches_view(page, artifacts, wait_for_json, wait_until_idle):
    page.get_by_role("tab", name=learned_tab.TITLE).click()
    plots = ("#learned-model img", "#learned-exact img", "#learned-curve img")
    for sel in plots:
        page.locator(sel).wait_for(state="visible", timeout=TIMEOUT_MS)
    first = wait_for_json(page, "#learned-values", lambda v: True)
    assert first["model"] == learned_tab.MODELS[("gmm8", learned_tab.DEFAULT["view"])]
    before = [page.locator(s).get_attribute("src") for s in plots]
    _pick(page, "learned-view", "score")
    shown = wait_for_json(page, "#learned-values", lambda v: v["view"] == "score", timeout_s=60)
    assert shown["model"] == "gmm8-dsm" and shown["w2_exact"] > 0
    wait_until_idle(page)
    after = [page.locator(s).get_attribute("src") for s in plots]
    assert after[0] != before[0]
    for sel in plots:
        box = page.locator(sel).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 150
    page.screenshot(path=str(artifacts / f"hub_learned_{page.width}.png"), full_page=True)
    assert not page.errors, page.errors


def test_digits_tab_draws_the_asked_digit(page, artifacts, wait_for_json, wait_until_idle):
    page.get_by_role("tab", name=digits_tab.TITLE).click()
    grid = page.locator("#digits-grid img")
    grid.wait_for(state="visible", timeout=TIMEOUT_MS)
    first = wait_for_json(page, "#digits-values", lambda v: True)
    assert first["digit"] == digits_tab.DEFAULT["digit"]
    before = grid.get_attribute("src")
    box = page.locator("#digits-digit input[type=number]")
    box.fill("7")
    box.press("Enter")  # a slider's typed value runs on input
    shown = wait_for_json(page, "#digits-values", lambda v: v["digit"] == 7, timeout_s=60)
    assert shown["accuracy"] == pytest.approx(sum(p == 7 for p in shown["predicted"]) / shown["count"])
    wait_until_idle(page)
    assert grid.get_attribute("src") != before
    bbox = grid.bounding_box()
    assert bbox is not None and bbox["width"] > 250
    page.screenshot(path=str(artifacts / f"hub_digits_{page.width}.png"), full_page=True)
    assert not page.errors, page.errors
