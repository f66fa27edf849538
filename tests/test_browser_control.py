"""Browser test: the Guidance, Few-step and Inverse problems tabs of the demo hub in headless chromium.

Each tab shows its default view on load; a changed input re-renders the plot and the values panel
reports the new run; on the Inverse problems tab a drawn mask (given as text) becomes the hidden
part, and a stroke painted with the brush does too. Screenshots go to test-artifacts/hub_guidance.png, hub_fewstep.png and hub_inverse.png.
"""

from __future__ import annotations

import pytest

from apps import fewstep_tab, guidance_tab, hub, inverse_tab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

TIMEOUT_MS = 60_000
TABS_UNDER_TEST = [guidance_tab, fewstep_tab, inverse_tab]  # served alone (fixture tabs_url)


@pytest.fixture(scope="module")
def page(browser, tabs_url):
    for tab in TABS_UNDER_TEST:
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


def test_inverse_tab(page, artifacts, wait_for_json, wait_until_idle):
    page.get_by_role("tab", name=inverse_tab.TITLE).click()
    img = page.locator("#inverse-plot img")
    img.wait_for(state="visible", timeout=TIMEOUT_MS)
    first = wait_for_json(page, "#inverse-values", lambda v: True)
    assert first["mask"] == inverse_tab.DEFAULT["mask"] and first["hidden"] == 32
    before = img.get_attribute("src")
    page.locator("#inverse-mask input").click()
    page.get_by_role("option", name="centre", exact=True).click()
    shown = wait_for_json(page, "#inverse-values", lambda v: v["mask"] == "centre", timeout_s=90)
    assert shown["hidden"] == 16
    wait_until_idle(page, timeout_s=90)
    assert img.get_attribute("src") != before
    # the editor shows the digit; a drawn mask (what painting in it produces) arrives as text
    assert page.locator("#inverse-editor canvas").first.is_visible()
    page.locator("#inverse-mask input").click()
    page.get_by_role("option", name="drawn", exact=True).click()
    shown = wait_for_json(page, "#inverse-values", lambda v: v["mask"] == "drawn", timeout_s=90)
    assert shown["hidden"] == 0  # nothing drawn yet: nothing hidden
    page.get_by_text("drawn mask as text").click()
    box = page.locator("#inverse-drawn textarea, #inverse-drawn input").first
    box.fill("1" * 16 + "0" * 48)  # the top two rows
    box.press("Enter")
    drawn = wait_for_json(page, "#inverse-values", lambda v: v["mask"] == "drawn" and v["hidden"] == 16,
                          timeout_s=90)
    assert len(drawn["replacement"]["predicted"]) == inverse_tab.SAMPLES
    wait_until_idle(page, timeout_s=90)
    # painting with the brush: a stroke across the middle of the digit becomes the drawn mask
    page.locator("#inverse-editor button[aria-label=Brush]").click()
    canvas = page.locator("#inverse-editor canvas").first.bounding_box()
    y = canvas["y"] + 0.5 * canvas["height"]
    page.mouse.move(canvas["x"] + 0.3 * canvas["width"], y)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(canvas["x"] + (0.3 + 0.04 * k) * canvas["width"], y)
    page.mouse.up()
    painted = wait_for_json(page, "#inverse-values",
                            lambda v: v["mask"] == "drawn" and v["hidden"] != 16, timeout_s=90)
    assert 0 < painted["hidden"] < 64
    bits = box.input_value()
    assert len(bits) == 64 and bits.count("1") == painted["hidden"] and "1" * 16 not in bits
    wait_until_idle(page, timeout_s=90)
    page.screenshot(path=str(artifacts / "hub_inverse.png"), full_page=True)
    assert not page.errors, page.errors
