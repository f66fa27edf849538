"""Browser test: the "dLLM decoding" tab in headless Debian chromium, driven by Playwright.

Opens the tab, decodes with the default setting (the HMM oracle language, confidence, 4 tokens
in 2 rounds, temperature 1), checks that the rounds table shows every round and that the Pareto
plot renders, moves the round slider back to round 1 and checks the table shrinks, and saves a
screenshot to test-artifacts/hub_dllm.png.
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


def test_decode_renders_rounds_and_pareto(browser, hub_url, artifacts):
    page = browser.new_page(viewport={"width": 1400, "height": 1500})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(hub_url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
        page.get_by_role("tab", name=dllm_tab.TITLE).click(timeout=TIMEOUT_MS)
        page.locator("#dllm-run").click(timeout=TIMEOUT_MS)
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

        # the round slider: back to round 1 (typed into its number box)
        box = page.locator("#dllm-round input[type=number]")
        box.fill("1")
        box.press("Enter")
        page.wait_for_function("() => document.querySelectorAll("
                               "'#dllm-rounds table.dk-rounds tr').length === 3",
                               timeout=TIMEOUT_MS)
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts / "hub_dllm.png"), full_page=True)
        assert not errors, errors
    finally:
        page.close()
