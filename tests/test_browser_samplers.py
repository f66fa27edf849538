"""Browser test: the Samplers tab of the demo hub in headless Debian chromium (Playwright).

Opens the Samplers tab, picks another solver and another number of steps, checks that the three
plots re-render and that the values panel reports the new run (its NFE follows the solver's
calls per step), and saves a screenshot to test-artifacts/hub_samplers.png.
"""

from __future__ import annotations

import pytest

from apps import hub, samplers_tab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

TIMEOUT_MS = 30_000
PLOTS = ("#samplers-trajectories img", "#samplers-samples img", "#samplers-w2 img")


@pytest.fixture(scope="module")
def page(browser, hub_url):
    if samplers_tab not in hub.TABS:
        pytest.fail("apps.samplers_tab is not in apps.hub.TABS: register the Samplers tab")
    pg = browser.new_page(viewport={"width": 1280, "height": 1500})
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.goto(hub_url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
    try:
        yield pg
    finally:
        pg.close()


def _srcs(page) -> list[str]:
    return [page.locator(sel).get_attribute("src") for sel in PLOTS]


def test_change_solver_and_steps_rerenders(page, artifacts, wait_for_json, wait_until_idle):
    page.get_by_role("tab", name=samplers_tab.TITLE).click()
    for sel in PLOTS:
        page.locator(sel).wait_for(state="visible", timeout=TIMEOUT_MS)
    before = _srcs(page)
    assert all(s and s.startswith("data:image/png;base64,") for s in before)
    first = wait_for_json(page, "#samplers-values", lambda v: True)
    assert (first["solver"], first["steps"]) == (samplers_tab.DEFAULT["solver"],
                                                  samplers_tab.DEFAULT["steps"])

    # pick heun in the solver dropdown
    page.locator("#samplers-solver input").click()
    page.get_by_role("option", name="heun", exact=True).click()
    wait_for_json(page, "#samplers-values", lambda v: v["solver"] == "heun")

    # type 16 into the steps box of the slider
    box = page.locator("#samplers-steps input[type=number]")
    box.fill("16")
    box.press("Enter")
    shown = wait_for_json(page, "#samplers-values", lambda v: v["solver"] == "heun" and v["steps"] == 16)
    assert shown["nfe"] == 2 * 16 - 1  # two calls per step, one on the last
    d = dict(samplers_tab.DEFAULT, solver="heun", steps=16)
    _, expected = samplers_tab.run(*(d[k] for k in ("path", "solver", "grid", "steps", "points",
                                                     "data", "seed")))
    assert shown["w2"] == expected["w2"]  # the W2 estimate of this very run
    wait_until_idle(page)
    after = _srcs(page)
    assert after[0] != before[0] and after[1] != before[1] and after[2] != before[2]
    for sel in PLOTS:  # every plot is drawn with a real size
        bbox = page.locator(sel).bounding_box()
        assert bbox is not None and bbox["width"] > 200 and bbox["height"] > 150
    page.screenshot(path=str(artifacts / "hub_samplers.png"), full_page=True)
    assert not page.errors, page.errors
