"""Browser test: the Guidance and Few-step tabs of the demo hub in headless chromium.

Each tab shows its default view on load; a changed input re-renders the plot and the values panel
reports the new run. Screenshots go to test-artifacts/hub_guidance.png and hub_fewstep.png.
"""

from __future__ import annotations

import pytest

from apps import fewstep_tab, guidance_tab, hub

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

TIMEOUT_MS = 60_000
TABS_UNDER_TEST = [guidance_tab, fewstep_tab]  # served alone (fixture tabs_url)


@pytest.fixture(scope="module")
def page(browser, tabs_url):
    for tab in (guidance_tab, fewstep_tab):
        if tab not in hub.TABS:
            pytest.fail(f"{tab.__name__} is not in apps.hub.TABS")
    pg = browser.new_page(viewport={"width": 1280, "height": 1400})
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.goto(tabs_url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
    try:
        yield pg
    finally:
        pg.close()


def _type(page, selector: str, value: str) -> None:
    box = page.locator(f"{selector} input[type=number]")
    box.fill(value)
    box.press("Enter")


def test_guidance_tab(page, artifacts, wait_for_json, wait_until_idle):
    page.get_by_role("tab", name=guidance_tab.TITLE).click()
    img = page.locator("#guidance-samples img")
    img.wait_for(state="visible", timeout=TIMEOUT_MS)
    first = wait_for_json(page, "#guidance-values", lambda v: True)
    assert first["scale"] == guidance_tab.DEFAULT["scale"]
    before = img.get_attribute("src")
    _type(page, "#guidance-scale", "1")
    shown = wait_for_json(page, "#guidance-values", lambda v: v["scale"] == 1.0, timeout_s=90)
    assert shown["coverage"] > first["coverage"]
    wait_until_idle(page, timeout_s=90)
    assert img.get_attribute("src") != before
    bbox = img.bounding_box()
    assert bbox is not None and bbox["width"] > 200 and bbox["height"] > 150
    page.screenshot(path=str(artifacts / "hub_guidance.png"), full_page=True)
    assert not page.errors, page.errors


def test_fewstep_tab(page, artifacts, wait_for_json, wait_until_idle):
    page.get_by_role("tab", name=fewstep_tab.TITLE).click()
    img = page.locator("#fewstep-plot img")
    img.wait_for(state="visible", timeout=TIMEOUT_MS)
    first = wait_for_json(page, "#fewstep-values", lambda v: True)
    assert first["steps"] == fewstep_tab.DEFAULT["steps"]
    _type(page, "#fewstep-steps", "4")
    shown = wait_for_json(page, "#fewstep-values", lambda v: v["steps"] == 4, timeout_s=90)
    assert "flow map, 4 call(s)" in shown["w2"]
    wait_until_idle(page, timeout_s=90)
    page.screenshot(path=str(artifacts / "hub_fewstep.png"), full_page=True)
    assert not page.errors, page.errors
