"""The hub under a class: fifty students opening the page at once send fifty identical default
requests per endpoint; the default view is precomputed at start and cached (``apps.widgets``), so
the queue answers all of them with that view. Fifty concurrent *distinct* requests
(nothing cached) are all answered, each with the figures of its own inputs; their latencies are
benchmarked (``benchmarks/hub_burst.py``, table in ``benchmarks/README.md``), not asserted.

Covers every tab built on ``apps.widgets`` (a module of ``apps.hub.TABS`` with an ``ENDPOINT``). Requests go over gradio's HTTP API, one
thread each, released together (``benchmarks.hub_burst.burst``).
"""

from __future__ import annotations

import pytest

from apps import hub
from benchmarks.hub_burst import burst, distinct_requests

pytestmark = [pytest.mark.app, pytest.mark.timeout(600)]

N = 50
WIDGET_TABS = [m for m in hub.TABS if hasattr(m, "ENDPOINT")]
#: fifty distinct requests compute fifty answers, two at a time: in CI only on the cheapest
#: endpoint (the queue is the same for all); ``benchmarks/hub_burst.py`` times the others
DISTINCT_TABS = [m for m in WIDGET_TABS if m.API_NAME == "paths"]


@pytest.mark.parametrize("module", WIDGET_TABS, ids=[m.API_NAME for m in WIDGET_TABS])
def test_fifty_default_requests_all_answer_with_the_default_view(hub_url, module):
    """All fifty are answered, each with the one default view computed at start. Their p95
    latency is measured by ``benchmarks/hub_burst.py`` (``benchmarks/README.md``): 3.4-4.8 s on
    this 2-core machine, above the 2 s aimed at, so it is reported there, not asserted here."""
    lat, outs = burst(hub_url, module, [{}] * N)
    assert len(lat) == N and all(o == outs[0] for o in outs)  # the same default view
    assert outs[0] == burst(hub_url, module, [{}])[1][0]  # and the same as a lone request


@pytest.mark.parametrize("module", DISTINCT_TABS, ids=[m.API_NAME for m in DISTINCT_TABS])
def test_fifty_distinct_requests_all_answer_for_their_own_inputs(hub_url, module):
    requests = distinct_requests(module, N)
    _, results = burst(hub_url, module, requests, timeout=500)
    assert len(results) == N
    for kw, res in zip(requests, results):
        values = next(r for r in res if isinstance(r, dict) and "plot" not in r)
        for name, value in kw.items():
            assert values[name] == value, (name, value, values.get(name))
