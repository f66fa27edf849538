"""Browser tests of the whole hub, tab by tab, in headless Debian chromium (Playwright).

Generic over ``apps.hub.TABS``, so a tab added to the hub is covered without a new test:

* **default view on load**, at 1400 and 800 px: each tab, opened without touching an input,
  shows every plot as an image and no error badge; a full-page screenshot of each tab at each
  width goes to ``test-artifacts/hub_<tab>_<width>.png`` (look at them);
* **bad typed values in every numeric input** of every tab, at both widths: the inputs are
  the tab endpoint's ``Numeric`` specs (the served config maps each to its component, slider or
  number box), and into each box goes, in turn, a value far below the minimum, an empty box,
  0.37, a value far above the maximum, a fraction inside the bounds (integer inputs) and the
  default. After each the box must show exactly what was run (the bound a value was clamped to,
  or the last valid value after a refusal); a clamp or refusal must bring exactly one warning
  naming the input and exactly one line in the server log, a valid value none; no error toast or
  badge ever; every plot still shows an image, and after a refusal every plot is unchanged.
  A screenshot of each tab after its bad values goes to ``hub_<tab>_bad_values_<width>.png``.
"""

from __future__ import annotations

import re

import httpx
import pytest

from apps import hub
from apps import widgets as w

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

TIMEOUT_MS = 60_000
WIDTHS = (1400, 800)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _open_tab(page, title: str):
    page.get_by_role("tab", name=title, exact=True).click()
    panel = page.locator("[role=tabpanel]:visible").first
    panel.wait_for(state="visible", timeout=TIMEOUT_MS)
    return panel


def _plots_shown(panel) -> int:
    """Number of gr.Plot outputs in ``panel`` that show an image; fails on an empty plot."""
    plots = panel.locator("[data-testid=matplotlib]")
    n = 0
    for i in range(plots.count()):
        img = plots.nth(i).locator("img")
        img.first.wait_for(state="visible", timeout=TIMEOUT_MS)
        src = img.first.get_attribute("src") or ""
        assert src.startswith("data:image/"), f"plot {i} shows no image"
        n += 1
    return n


def _error_badges(panel) -> int:
    return panel.locator(".error:visible").count()


@pytest.fixture(scope="module", params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def page(request, browser, hub_url):
    width = request.param
    pg = browser.new_page(viewport={"width": width, "height": 1400})
    pg.width = width
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.goto(hub_url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
    pg.get_by_role("tab").first.wait_for(timeout=TIMEOUT_MS)
    try:
        yield pg
    finally:
        pg.close()


@pytest.mark.parametrize("module", hub.TABS, ids=[_slug(m.TITLE) for m in hub.TABS])
def test_default_view_on_load(page, module, artifacts, wait_until_idle):
    panel = _open_tab(page, module.TITLE)
    assert _plots_shown(panel) >= 1, f"{module.TITLE}: no plot on load"
    wait_until_idle(page)
    assert _error_badges(panel) == 0
    # nothing is wider than the page (a table sliding under a plot, a plot cut off)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{module.TITLE} at {page.width} px overflows by {overflow} px"
    page.screenshot(path=str(artifacts / f"hub_{_slug(module.TITLE)}_{page.width}.png"),
                    full_page=True)
    assert not page.errors, page.errors


def _log_lines(artifacts) -> list[str]:
    return [ln for ln in (artifacts / "hub.log").read_text().splitlines()
            if ln.startswith("diffkit.apps:")]


def _numeric_inputs(hub_url, module) -> list[tuple[w.Numeric, str, bool]]:
    """``(spec, elem_id, visible)`` of every numeric input of ``module``'s endpoint, read from
    the served page's config: the named API's event lists its components in the specs' order."""
    config = httpx.get(hub_url + "config", timeout=30).json()
    comps = {c["id"]: c for c in config["components"]}
    api = module.ENDPOINT.api_name
    (dep,) = [d for d in config["dependencies"] if d.get("api_name") == api]
    assert len(dep["inputs"]) == len(module.ENDPOINT.specs)
    out = []
    for spec, cid in zip(module.ENDPOINT.specs, dep["inputs"]):
        if isinstance(spec, w.Numeric):
            props = comps[cid]["props"]
            assert props.get("elem_id"), f"{api}: input {spec.name} has no elem_id"
            out.append((spec, props["elem_id"], props.get("visible", True) is not False))
    return out


def _bad_values(spec: w.Numeric) -> list[tuple[str, float | None, bool]]:
    """What to type into ``spec``'s box, in order, each with what the box must show afterwards
    (None: the last valid value) and whether the page must say something (a clamp or a refusal:
    one message, one log line). The sequence starts low (cheap runs), ends on the default."""
    inside = min(max(0.37, spec.lo), spec.hi)
    steps = [("-1e9", spec.lo, True),
             ("", None, True),  # refused: the last valid value comes back
             ("0.37", None if spec.integer else inside, spec.integer or inside != 0.37),
             ("1e9", spec.hi, True)]
    if spec.integer:  # a fraction inside the bounds is refused, not rounded
        steps.append((f"{spec.lo + 0.5:g}", None, True))
    steps.append((f"{spec.default:g}", spec.default, False))
    return steps


_CLOSE_TOASTS_JS = "() => document.querySelectorAll('[data-testid=toast-close]')" \
    ".forEach(b => b.click())"


def _messages(page) -> tuple[list[str], int]:
    """The texts of the toasts on the page and the number of error toasts; closes them all."""
    texts = page.locator("[data-testid=toast-text]").all_inner_texts()
    errors = page.locator(".toast-body.error").count()
    page.evaluate(_CLOSE_TOASTS_JS)
    return texts, errors


def _plot_sources(panel) -> list[str]:
    imgs = panel.locator("[data-testid=matplotlib] img")
    return [imgs.nth(i).get_attribute("src") or "" for i in range(imgs.count())]


def _wait(page, ok, timeout_s: float = 30.0) -> bool:
    for _ in range(int(timeout_s * 20)):
        if ok():
            return True
        page.wait_for_timeout(50)
    return False


_BUSY_JS = "() => !!document.querySelector('.pending, .eta-bar')"


def _idle(page, timeout_s: float = 30.0) -> None:
    """Wait until no output is marked ``.pending`` (an event in flight) for 100 ms."""
    for _ in range(2):
        assert _wait(page, lambda: not page.evaluate(_BUSY_JS), timeout_s), "the page stays busy"
        page.wait_for_timeout(100)


def _is_event(request) -> bool:
    return "/queue/join" in request.url


def _shows(box, value: float) -> bool:
    try:
        return float(box.input_value()) == float(value)
    except ValueError:
        return False


@pytest.mark.parametrize("module", hub.TABS, ids=[_slug(m.TITLE) for m in hub.TABS])
def test_bad_typed_values_never_break_the_page(page, module, artifacts, hub_url,
                                              wait_until_idle):
    panel = _open_tab(page, module.TITLE)
    wait_until_idle(page, quiet_ms=300)
    inputs = [(spec, elem_id) for spec, elem_id, visible in _numeric_inputs(hub_url, module)
              if visible]
    assert inputs, f"{module.TITLE} has no numeric input"
    _messages(page)
    for spec, elem_id in inputs:
        box = page.locator(f"#{elem_id} input[type=number]")
        last = float(box.input_value())
        for typed, expect, says in _bad_values(spec):
            where = f"{module.TITLE} at {page.width} px, {spec.name} typed {typed!r}"
            logged = len(_log_lines(artifacts))
            before = _plot_sources(panel)
            with page.expect_request(_is_event, timeout=TIMEOUT_MS):  # one event, sent
                box.fill(typed)
                box.press("Enter")
            shown = last if expect is None else expect
            if says:  # answered when the value written back (or kept) shows, and its log line
                _wait(page, lambda b=box, v=shown, n=logged:
                      _shows(b, v) and len(_log_lines(artifacts)) > n)
            _idle(page)
            assert _shows(box, shown), f"{where}: the box shows {box.input_value()!r}"
            new_lines = _log_lines(artifacts)[logged:]
            assert len(new_lines) == int(says), f"{where}: log lines {new_lines}"
            texts, errors = _messages(page)
            assert errors == 0 and _error_badges(panel) == 0, f"{where}: an error shows"
            if says:
                assert len(texts) == 1 and spec.name in texts[0], f"{where}: messages {texts}"
                assert spec.name in new_lines[0]
            else:
                assert texts == [], f"{where}: messages {texts}"
            assert _plots_shown(panel) >= 1
            if expect is None:  # refused: every output keeps the last valid run
                assert _plot_sources(panel) == before, f"{where}: the outputs changed"
            last = shown
    page.screenshot(path=str(artifacts / f"hub_{_slug(module.TITLE)}_bad_values_{page.width}.png"),
                    full_page=True)
    assert not page.errors, page.errors
    log = (artifacts / "hub.log").read_text()
    assert "Traceback" not in log, log[log.index("Traceback"):][:2000]
