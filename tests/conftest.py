"""Shared fixtures.

``hub_url``: the demo hub served by ``python -m apps.hub --host 127.0.0.1 --port <free port>``
(the command ``make demo`` runs) in a child process for the whole session, stopped at its end.
Starting it is bounded by ``HUB_START_TIMEOUT`` seconds; its output goes to
``test-artifacts/hub.log``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MPLBACKEND", "Agg")

# Property tests: a local run explores new random examples each time; CI (CI=true) replays a
# fixed, derandomized set, so that a submission's result does not depend on the draw.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `apps` is not an installed package: import it from the checkout
    sys.path.insert(0, str(ROOT))

ARTIFACTS = ROOT / "test-artifacts"
HUB_START_TIMEOUT = 120.0
HUB_STOP_TIMEOUT = 15.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread avoids thread start-up costs (restored afterwards)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """``test-artifacts/`` at the repository root (git-ignored), created on demand."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def hub_url(artifacts):
    """URL of the demo hub on 127.0.0.1, served by a child process; stopped after the session."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    log = open(artifacts / "hub.log", "w")  # closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "apps.hub", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        start = time.monotonic()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the hub exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(url, timeout=5.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - start > HUB_START_TIMEOUT:
                raise RuntimeError(f"the hub did not answer on {url} within {HUB_START_TIMEOUT} s")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=HUB_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=HUB_STOP_TIMEOUT)
        log.close()


# -- headless Debian chromium, driven by Playwright (one browser for the whole session) ---------
CHROMIUM = os.environ.get("DIFFKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium (Playwright's own browser download cannot work offline), headless."""
    import shutil

    if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make chromium`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def read_json_panel(page, selector: str) -> dict | None:
    """A gr.JSON panel's value as the page shows it (None until it parses): the viewer puts
    every token on its own line."""
    import json

    text = page.locator(selector).inner_text()
    if "{" not in text:
        return None
    try:
        return json.loads("".join(text[text.index("{"):].splitlines()))
    except json.JSONDecodeError:
        return None


@pytest.fixture(scope="session")
def wait_for_json():
    """``wait_for_json(page, selector, pred, timeout_s=30)``: poll a JSON panel until ``pred``
    holds for its value; return the value."""

    def wait(page, selector: str, pred, timeout_s: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            values = read_json_panel(page, selector)
            if values is not None and pred(values):
                return values
            page.wait_for_timeout(100)
        raise AssertionError(f"{selector} never matched; last: {read_json_panel(page, selector)}")

    return wait


@pytest.fixture(scope="session")
def wait_until_idle():
    """``wait_until_idle(page, quiet_ms=600, timeout_s=30)``: wait until no output shows gradio's
    progress overlay (its ``.eta-bar``) for ``quiet_ms`` (a drag queues a trailing event or two
    after the value a test waited for)."""

    def wait(page, quiet_ms: int = 600, timeout_s: float = 30.0) -> None:
        deadline, quiet_since = time.monotonic() + timeout_s, None
        while time.monotonic() < deadline:
            busy = page.evaluate("() => !!document.querySelector('.eta-bar')")
            now = time.monotonic()
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif (now - quiet_since) * 1000 >= quiet_ms:
                page.wait_for_timeout(300)  # the overlay's fade-out
                return
            page.wait_for_timeout(100)
        raise AssertionError("the hub never became idle")

    return wait



@pytest.fixture(scope="module")
def tabs_url(request):
    """URL of a hub holding only the tabs named by the test module's ``TABS_UNDER_TEST`` (a list
    of tab modules), served in this process on a free port and closed after the module: a tab's
    endpoints and page can be tested without waiting for every other tab's default view."""
    from apps import hub

    demo = hub.build_hub(list(request.module.TABS_UNDER_TEST))
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                theme=hub.THEME)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
