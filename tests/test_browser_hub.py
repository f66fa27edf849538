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
  its last input's clamp goes to ``hub_<tab>_bad_values_<width>.png`` (look at them). Inputs
  hidden until a choice shows them (the dLLM tab's strategy options) are reached as a user
  reaches them: the tab's ``reveal(name)`` names the choice, the test picks it in its dropdown.
  View controls (a tab's ``VIEW_CONTROLS``: the dLLM tab's round slider) get the same values and the
  same checks (``hub_<tab>_view_<width>.png``); any other numeric box fails the test.
"""

from __future__ import annotations

import json
import re
import time
from typing import NamedTuple

import httpx
import pytest
from conftest import ROOT

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
    pg.joins = []  # the bodies of the run events sent, for a failure's message
    pg.on("request", lambda r: pg.joins.append(r.post_data) if "/queue/join" in r.url else None)
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


class Input(NamedTuple):
    """One input of a named API as the served page has it."""

    spec: object  # the tab's spec (w.Numeric, w.Choice, ...)
    elem_id: str | None
    kind: str  # the component's type: slider, number, dropdown, ...
    visible: bool
    cid: int  # the component's id (an event's trigger_id)


def _inputs(hub_url, api: str, specs) -> list[Input]:
    """Every input of the named API ``api``, read from the served page's config: the named
    API's event lists its components in the specs' order."""
    config = httpx.get(hub_url + "config", timeout=30).json()
    comps = {c["id"]: c for c in config["components"]}
    (dep,) = [d for d in config["dependencies"] if d.get("api_name") == api]
    assert len(dep["inputs"]) >= len(specs)
    out = []
    for spec, cid in zip(specs, dep["inputs"]):
        props = comps[cid]["props"]
        out.append(Input(spec, props.get("elem_id"), comps[cid]["type"],
                         props.get("visible", True) is not False, cid))
    return out


def _numeric_inputs(hub_url, api: str, specs) -> list[Input]:
    """The numeric inputs of the named API ``api`` (see :func:`_inputs`), each with an elem_id."""
    out = [i for i in _inputs(hub_url, api, specs) if isinstance(i.spec, w.Numeric)]
    for i in out:
        assert i.elem_id, f"{api}: input {i.spec.name} has no elem_id"
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
#: marks its outputs ``.pending``), the toasts' texts, error toasts and badges, the outputs (the
#: plots' images and the tables' HTML)
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
    tables: [...panel.querySelectorAll('table')].map(t => t.outerHTML),
  };
}"""
_CLOSE_TOASTS_JS = "() => document.querySelectorAll('[data-testid=toast-close]')" \
    ".forEach(b => b.click())"


def _shows(snap: dict, value: float) -> bool:
    try:
        return float(snap["box"]) == float(value)
    except ValueError:
        return False


#: run before the page's own scripts: records the ids of the events the page has sent (answers
#: to ``/queue/join``) in ``window.diffkitSent`` and of those the server has answered
#: (``process_completed`` messages in the page's event streams) in ``window.diffkitDone``
_COUNT_ANSWERS_JS = """
window.diffkitSent = new Set();
window.diffkitDone = new Set();
const fetchAnswers = window.fetch;
window.fetch = async (...args) => {
  const response = await fetchAnswers(...args);
  const url = String((args[0] && args[0].url) || args[0]);
  if (url.includes('/queue/join')) {
    response.clone().json().then(j => window.diffkitSent.add(j.event_id)).catch(() => {});
    return response;
  }
  if (!url.includes('/queue/data') || !response.body) return response;
  const [page, watched] = response.body.tee();
  (async () => {
    const reader = watched.getReader(), text = new TextDecoder();
    let tail = '';
    for (;;) {
      const {done, value} = await reader.read();
      if (done) return;
      const lines = (tail + text.decode(value, {stream: true})).split('\\n');
      tail = lines.pop();
      for (const line of lines) {
        if (!line.startsWith('data:')) continue;
        try {
          const m = JSON.parse(line.slice(5));
          if (m.msg === 'process_completed') window.diffkitDone.add(m.event_id);
        } catch (e) {}
      }
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


def _type(page, box, typed: str, trigger: int, where: str) -> None:
    """Type ``typed`` into ``box`` as a user does, key by key over a selected text, then Enter;
    return once the server has answered the run event it sent (the event triggered by the
    component ``trigger``, not a keystroke in a slider's box, which the page skips)."""

    def sent(response) -> bool:
        if "/queue/join" not in response.url:
            return False
        body = json.loads(response.request.post_data or "{}")
        return body.get("trigger_id") == trigger and w.TYPING not in body.get("data", [])

    try:
        with page.expect_response(sent, timeout=TIMEOUT_MS) as joined:
            _keys(box, typed)
    except Exception as err:  # noqa: BLE001 - say which value sent nothing, show the page
        page.screenshot(path=str(ROOT / "test-artifacts" / "hub_no_event.png"), full_page=True)
        raise AssertionError(f"{where}: no run event was sent ({err}); the page: "
                             f"test-artifacts/hub_no_event.png; trigger {trigger}, last events "
                             f"{[j[-160:] for j in page.joins[-4:]]}") from None
    page.wait_for_function("id => window.diffkitDone.has(id)", arg=joined.value.json()["event_id"],
                           timeout=TIMEOUT_MS)
    _settle(page)


def _settle(page) -> None:
    """Wait until every event the page has sent is answered, and still is 100 ms later (an
    answer can chain another event: a view control following a run)."""
    idle = "() => [...window.diffkitSent].every(id => window.diffkitDone.has(id))"
    while True:
        page.wait_for_function(idle, timeout=TIMEOUT_MS)
        page.wait_for_timeout(100)
        if page.evaluate(idle):
            return


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


def _type_bad_values(page, artifacts, where_tab: str, box_input: Input,
                     screenshot: str | None = None) -> None:
    """Type :func:`_bad_values` into the box of ``box_input`` and check what the page does with
    each (see the module's docstring); ``screenshot``: a file name for the page showing the
    clamp of the value far above the bounds."""
    spec, elem_id, cid = box_input.spec, box_input.elem_id, box_input.cid
    box = page.locator(f"#{elem_id} input[type=number]")
    last = float(box.input_value())
    snap = page.evaluate(_SNAPSHOT_JS, elem_id)
    for typed, expect, says in _bad_values(spec):
        where = f"{where_tab} at {page.width} px, {spec.name} typed {typed!r}"
        logged = len(_log_lines(artifacts))
        before = snap["plots"], snap["tables"]
        _type(page, box, typed, cid, where)
        shown = last if expect is None else expect
        snap = _answer(page, elem_id, lambda sn, v=shown: _shows(sn, v), where)
        if typed == "1e9" and screenshot:  # the page with a clamp's message
            page.wait_for_timeout(500)  # the toast's fade-in
            page.screenshot(path=str(artifacts / screenshot), full_page=True)
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
            assert (snap["plots"], snap["tables"]) == before, f"{where}: the outputs changed"
        last = shown


def _choose(page, hub_url, module, values: dict) -> None:
    """Set the tab's choice inputs to ``values`` as a user does (open the dropdown, click the
    option) and wait for the page to settle."""
    by_name = {i.spec.name: i.elem_id
               for i in _inputs(hub_url, module.ENDPOINT.api_name, module.ENDPOINT.specs)}
    for name, value in values.items():
        assert by_name.get(name), f"{module.TITLE}: input {name} has no elem_id"
        page.locator(f"#{by_name[name]} input").click()
        page.get_by_role("option", name=value, exact=True).click()
        _settle(page)


@pytest.mark.parametrize("module", hub.TABS, ids=[_slug(m.TITLE) for m in hub.TABS])
def test_bad_typed_values_never_break_the_page(wide_page, module, artifacts, hub_url,
                                              wait_until_idle):
    """Every numeric input of the tab's endpoint (the hidden ones after the choice that shows
    them, from the tab's ``reveal``), then every view control (``VIEW_CONTROLS``); no other numeric box
    may exist."""
    page = wide_page
    panel = _open_tab(page, module.TITLE)
    assert _plots_shown(panel) >= 1
    wait_until_idle(page, quiet_ms=300)
    inputs = _numeric_inputs(hub_url, module.ENDPOINT.api_name, module.ENDPOINT.specs)
    shown = [i for i in inputs if i.visible]
    assert shown, f"{module.TITLE} has no numeric input"
    assert all(i.kind in ("slider", "number") for i in inputs)
    page.evaluate(_CLOSE_TOASTS_JS)
    for i in shown:
        _type_bad_values(page, artifacts, module.TITLE, i, screenshot=(
            f"hub_{_slug(module.TITLE)}_bad_values_{page.width}.png" if i is shown[-1] else None))
    # inputs hidden until a choice shows them (the dLLM tab's strategy options)
    groups: dict[tuple, list[Input]] = {}
    for i in inputs:
        if not i.visible:
            assert hasattr(module, "reveal"), f"{module.TITLE}: {i.spec.name} is never shown"
            groups.setdefault(tuple(module.reveal(i.spec.name).items()), []).append(i)
    for choice, group in groups.items():
        _choose(page, hub_url, module, dict(choice))
        for i in group:
            page.locator(f"#{i.elem_id}").wait_for(state="visible", timeout=TIMEOUT_MS)
            _type_bad_values(page, artifacts, f"{module.TITLE} ({dict(choice)})", i)
    if groups:
        _choose(page, hub_url, module, {k: module.ENDPOINT.defaults[k]
                                        for choice in groups for k, _ in choice})
    # view controls (the dLLM tab's round slider): the same contract
    views = [i for view in getattr(module, "VIEW_CONTROLS", ())
             for i in _numeric_inputs(hub_url, view.api_name, [view.spec])]
    for i in views:
        _type_bad_values(page, artifacts, module.TITLE, i,
                         screenshot=f"hub_{_slug(module.TITLE)}_view_{page.width}.png")
    # no numeric box of the tab is left unchecked
    checked = {i.elem_id for i in inputs + views}
    others = page.evaluate("""() => {
      const panel = [...document.querySelectorAll('[role=tabpanel]')].find(p => p.offsetParent);
      return [...panel.querySelectorAll('input[type=number]')].filter(b => b.offsetParent)
        .map(b => (b.closest('[id]') || {}).id || '');
    }""")
    assert set(others) <= checked, f"{module.TITLE}: unchecked boxes {set(others) - checked}"
    assert not page.errors, page.errors
    log = (artifacts / "hub.log").read_text()
    assert "Traceback" not in log, log[log.index("Traceback"):][:2000]
