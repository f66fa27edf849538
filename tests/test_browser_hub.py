"""Browser tests of the whole hub, tab by tab, in headless Debian chromium (Playwright).

Generic over ``apps.hub.TABS``, so a tab added to the hub is covered without a new test:

* **default view on load**, at 1400 and 800 px: each tab, opened without touching an input,
  shows every plot as an image and no error badge; a full-page screenshot of each tab at each
  width goes to ``test-artifacts/hub_<tab>_<width>.png`` (look at them);
* **bad typed values in every numeric input** of every tab, at 1400 px (what the page does with
  a typed value does not depend on its width; the 800 px layout is the default view's): the inputs are
  the tab endpoint's ``Numeric`` specs (the served config maps each to its component, slider or
  number box), and into each box goes, typed key by key over the selected text and then Enter,
  in turn: a value far below the minimum, an empty box, a fraction inside the bounds (integer
  inputs), a value far above the maximum and the default. Once the server has answered
  (the page's event streams are watched for ``process_completed``), the box must show exactly
  what was run (the bound a value was clamped to, or the last valid value after a refusal); a
  clamp or refusal must bring exactly one warning naming the input and exactly one line in the
  server log, a valid value none; no error toast or badge ever; every plot still shows an image,
  and after a refusal every plot is unchanged. A screenshot of each tab showing the message of
  its last input's clamp goes to ``hub_<tab>_bad_values_<width>.png`` (look at them). Any other
  numeric box of the tab (the dLLM tab's round slider) gets the same values and must show no
  error.
"""

from __future__ import annotations

import re
import time

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


def _open_page(browser, hub_url, width: int):
    pg = browser.new_page(viewport={"width": width, "height": 1400})
    pg.width = width
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.add_init_script(_COUNT_ANSWERS_JS)
    pg.goto(hub_url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
    pg.get_by_role("tab").first.wait_for(timeout=TIMEOUT_MS)
    return pg


@pytest.fixture(scope="module", params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def page(request, browser, hub_url):
    pg = _open_page(browser, hub_url, request.param)
    try:
        yield pg
    finally:
        pg.close()


@pytest.fixture(scope="module")
def wide_page(browser, hub_url):
    """The hub at the widest width: typed values are handled the same at every width."""
    pg = _open_page(browser, hub_url, max(WIDTHS))
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


def _numeric_inputs(hub_url, module) -> list[tuple[w.Numeric, str, str, bool]]:
    """``(spec, elem_id, kind, visible)`` of every numeric input of ``module``'s endpoint (kind:
    ``slider`` or ``number``), read from the served page's config: the named API's event lists
    its components in the specs' order."""
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
            out.append((spec, props["elem_id"], comps[cid]["type"],
                        props.get("visible", True) is not False))
    return out


def _bad_values(spec: w.Numeric) -> list[tuple[str, float | None, bool]]:
    """What to type into ``spec``'s box, in order, each with what the box must show afterwards
    (None: the last valid value) and whether the page must say something (a clamp or a refusal:
    one message, one log line). The sequence starts low (cheap runs), ends on a valid value."""
    steps = [("-1e9", spec.lo, True),
             ("", None, True)]  # refused: the last valid value comes back
    if spec.integer:  # a fraction inside the bounds is refused, not rounded
        steps.append((f"{spec.lo + 0.5:g}", None, True))
    steps += [("1e9", spec.hi, True), (f"{spec.default:g}", spec.default, False)]
    return steps


#: what the checks read, in one call: the box's text, whether an event is in flight (gradio
#: marks its outputs ``.pending``), the toasts' texts, error toasts and badges, the plots' images
_SNAPSHOT_JS = """(id) => {
  const panel = [...document.querySelectorAll('[role=tabpanel]')].find(p => p.offsetParent);
  const box = document.querySelector('#' + CSS.escape(id) + ' input[type=number]');
  return {
    box: box.value,
    busy: !!document.querySelector('.pending, .eta-bar'),
    toasts: [...document.querySelectorAll('[data-testid=toast-text]')].map(t => t.innerText),
    errors: document.querySelectorAll('.toast-body.error').length
            + [...panel.querySelectorAll('.error')].filter(e => e.offsetParent).length,
    plots: [...panel.querySelectorAll('[data-testid=matplotlib]')]
           .map(p => (p.querySelector('img') || {}).src || ''),
  };
}"""
_CLOSE_TOASTS_JS = "() => document.querySelectorAll('[data-testid=toast-close]')" \
    ".forEach(b => b.click())"


def _shows(snap: dict, value: float) -> bool:
    try:
        return float(snap["box"]) == float(value)
    except ValueError:
        return False


def _is_event(request) -> bool:
    """A page event that runs (not a keystroke in a slider's box, which the page skips)."""
    return "/queue/join" in request.url and w.TYPING not in (request.post_data or "")


#: run before the page's own scripts: counts the events the server has answered
#: (``process_completed`` messages in the page's event streams) in ``window.diffkitAnswered``
_COUNT_ANSWERS_JS = """
window.diffkitAnswered = 0;
const fetchAnswers = window.fetch;
window.fetch = async (...args) => {
  const response = await fetchAnswers(...args);
  const url = String((args[0] && args[0].url) || args[0]);
  if (!url.includes('/queue/data') || !response.body) return response;
  const [page, watched] = response.body.tee();
  (async () => {
    const reader = watched.getReader(), text = new TextDecoder();
    let tail = '';
    for (;;) {
      const {done, value} = await reader.read();
      if (done) return;
      const parts = (tail + text.decode(value, {stream: true})).split('process_completed');
      window.diffkitAnswered += parts.length - 1;
      tail = parts[parts.length - 1].slice(-20);
    }
  })().catch(() => {});  // the page closed the stream
  return new Response(page, {status: response.status, statusText: response.statusText,
                             headers: response.headers});
};
"""


def _keys(box, typed: str) -> None:
    box.select_text()
    if typed:
        box.press_sequentially(typed)
    else:
        box.press("Backspace")
    box.press("Enter")


def _type(page, box, typed: str, event: bool = True) -> None:
    """Type ``typed`` into ``box`` as a user does, key by key over a selected text, then Enter;
    return once the server has answered (``event``: and once the page has sent a run event)."""
    answered = page.evaluate("() => window.diffkitAnswered")
    if event:
        with page.expect_request(_is_event, timeout=TIMEOUT_MS):
            _keys(box, typed)
    else:
        _keys(box, typed)
    page.wait_for_function(f"() => window.diffkitAnswered > {answered}", timeout=TIMEOUT_MS)


def _answer(page, elem_id: str, done, where: str, timeout_s: float = 10.0) -> dict:
    """Poll the page (the answer drawn) until ``done(snapshot)`` holds and no event is marked in
    flight twice in a row; the last snapshot."""
    deadline, quiet = time.monotonic() + timeout_s, 0
    while time.monotonic() < deadline:
        snap = page.evaluate(_SNAPSHOT_JS, elem_id)
        quiet = quiet + 1 if done(snap) and not snap["busy"] else 0
        if quiet >= 2:
            return snap
        page.wait_for_timeout(30)
    snap.pop("plots")
    raise AssertionError(f"{where}: the page did not settle in {timeout_s} s; last {snap}")


@pytest.mark.parametrize("module", hub.TABS, ids=[_slug(m.TITLE) for m in hub.TABS])
def test_bad_typed_values_never_break_the_page(wide_page, module, artifacts, hub_url,
                                              wait_until_idle):
    page = wide_page
    panel = _open_tab(page, module.TITLE)
    assert _plots_shown(panel) >= 1
    wait_until_idle(page, quiet_ms=300)
    inputs = [(spec, elem_id, kind) for spec, elem_id, kind, visible
              in _numeric_inputs(hub_url, module) if visible]
    assert inputs, f"{module.TITLE} has no numeric input"
    page.evaluate(_CLOSE_TOASTS_JS)
    for spec, elem_id, kind in inputs:
        assert kind in ("slider", "number"), f"{spec.name}: a {kind}"
        box = page.locator(f"#{elem_id} input[type=number]")
        last = float(box.input_value())
        snap = page.evaluate(_SNAPSHOT_JS, elem_id)
        for typed, expect, says in _bad_values(spec):
            where = f"{module.TITLE} at {page.width} px, {spec.name} typed {typed!r}"
            logged = len(_log_lines(artifacts))
            before = snap["plots"]
            _type(page, box, typed)
            shown = last if expect is None else expect
            snap = _answer(page, elem_id, lambda sn, v=shown: _shows(sn, v), where)
            if typed == "1e9" and spec is inputs[-1][0]:  # the page with a clamp's message
                page.wait_for_timeout(500)  # the toast's fade-in
                page.screenshot(path=str(
                    artifacts / f"hub_{_slug(module.TITLE)}_bad_values_{page.width}.png"),
                    full_page=True)
            page.evaluate(_CLOSE_TOASTS_JS)  # gone before the next value is typed
            page.wait_for_function("() => !document.querySelector('[data-testid=toast-text]')",
                                   timeout=TIMEOUT_MS)
            new_lines = _log_lines(artifacts)[logged:]
            assert len(new_lines) == int(says), f"{where}: log lines {new_lines}"
            assert snap["errors"] == 0, f"{where}: an error shows"
            texts = snap["toasts"]
            if says:
                assert len(texts) == 1 and spec.name in texts[0], f"{where}: messages {texts}"
                assert spec.name in new_lines[0]
            else:
                assert texts == [], f"{where}: messages {texts}"
            assert snap["plots"] and all(p.startswith("data:image/") for p in snap["plots"]), (
                f"{where}: a plot shows no image")
            if expect is None:  # refused: every output keeps the last valid run
                assert snap["plots"] == before, f"{where}: the outputs changed"
            last = shown
    # numeric boxes of the tab outside its endpoint's inputs (the dLLM tab's round slider):
    # whatever is typed, no error shows and the log holds no traceback
    ids = {elem_id for _, elem_id, _ in inputs}
    others = page.evaluate("""() => {
      const panel = [...document.querySelectorAll('[role=tabpanel]')].find(p => p.offsetParent);
      return [...panel.querySelectorAll('input[type=number]')].filter(b => b.offsetParent)
        .map(b => (b.closest('[id]') || {}).id || '');
    }""")
    for elem_id in [i for i in others if i not in ids]:
        assert elem_id, f"{module.TITLE}: a numeric box without an elem_id"
        box = page.locator(f"#{elem_id} input[type=number]")
        for typed in ("-1e9", "", "1e9", "0.37"):
            _type(page, box, typed, event=False)
            snap = _answer(page, elem_id, lambda sn: True, f"{elem_id} typed {typed!r}")
            assert snap["errors"] == 0, f"{module.TITLE}, #{elem_id} typed {typed!r}: an error"
            assert snap["plots"] and all(p.startswith("data:image/") for p in snap["plots"])
        page.evaluate(_CLOSE_TOASTS_JS)
    assert not page.errors, page.errors
    log = (artifacts / "hub.log").read_text()
    assert "Traceback" not in log, log[log.index("Traceback"):][:2000]
