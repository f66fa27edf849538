"""Browser test: the "dLLM decoding" tab in headless Debian chromium, driven by Playwright.

Opens the tab at 1400 and 800 px: the default run (the HMM oracle language, confidence, 4 tokens
in 2 rounds, temperature 0) is shown on load without a click; the rounds table shows every round
inside its own column (it scrolls rather than sliding under the plot) and the Pareto plot
renders; moving the round slider back to round 1 shrinks the table; choosing a strategy shows
its own knobs. Screenshots: test-artifacts/hub_dllm.png and hub_dllm_800.png.
"""

from __future__ import annotations

import pytest

from apps import dllm_tab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

TIMEOUT_MS = 60_000


def _rows(page) -> int:
    """Rows of the rounds table (round 0 .. last shown), header excluded."""
    return page.evaluate(
        "() => document.querySelectorAll('#dllm-rounds table.dk-rounds tr').length - 1")


@pytest.mark.parametrize("width", [1400, 800])
def test_decode_renders_rounds_and_pareto(browser, hub_url, artifacts, width):
    page = browser.new_page(viewport={"width": width, "height": 1500})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(hub_url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
        page.get_by_role("tab", name=dllm_tab.TITLE).click(timeout=TIMEOUT_MS)
        pareto = page.locator("#dllm-pareto img")
        pareto.wait_for(state="visible", timeout=TIMEOUT_MS)
        assert (pareto.get_attribute("src") or "").startswith("data:image/png;base64,")
        page.wait_for_function("() => document.querySelectorAll("
                               "'#dllm-rounds table.dk-rounds tr').length > 1",
                               timeout=TIMEOUT_MS)
        # default: 4 tokens in 2 rounds -> rows for rounds 0, 1, 2
        assert _rows(page) == 3
        note = page.locator("#dllm-note").inner_text()
        assert "2 rounds" in note and "TV to the true law" in note
        # each committed cell shows a confidence in [0, 1]
        confs = page.evaluate("() => [...document.querySelectorAll('#dllm-rounds td small')]"
                              ".map(e => parseFloat(e.textContent))")
        assert len(confs) == 4 and all(0.0 <= c <= 1.0 for c in confs)
        # the table stays inside its column
        inside = page.evaluate(
            "() => { const t = document.querySelector('#dllm-rounds');"
            " const w = t.querySelector('div'); return w.getBoundingClientRect().right"
            " <= t.getBoundingClientRect().right + 1; }")
        assert inside
        # the round slider: back to round 1 (typed into its number box)
        box = page.locator("#dllm-round input[type=number]")
        box.fill("1")
        box.press("Enter")
        page.wait_for_function("() => document.querySelectorAll("
                               "'#dllm-rounds table.dk-rounds tr').length === 3",
                               timeout=TIMEOUT_MS)

        # a strategy shows its own knobs (from its record) and hides the others
        assert page.locator("#dllm-gamma").count() == 0 or not page.locator("#dllm-gamma").is_visible()
        page.locator("#dllm-strategy input").click()
        page.get_by_role("option", name="eb", exact=True).click()
        page.locator("#dllm-gamma").wait_for(state="visible", timeout=TIMEOUT_MS)
        page.wait_for_timeout(500)
        name = "hub_dllm.png" if width == 1400 else f"hub_dllm_{width}.png"
        page.screenshot(path=str(artifacts / name), full_page=True)
        assert not errors, errors
    finally:
        page.close()
