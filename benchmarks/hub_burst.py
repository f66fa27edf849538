"""The demo hub under a class: fifty requests at once per endpoint, as fifty students opening the
page (identical default requests) or moving their own inputs (distinct requests).

Starts the hub (``python -m apps.hub``, as ``make demo`` does) on a free local port, then for each
tab endpoint registered through ``apps.widgets`` (``TAB.ENDPOINT``):

* **default burst**: ``N`` concurrent calls with every input at its default (the page's first
  view; precomputed at start and served from the endpoint's LRU cache);
* **distinct burst**: ``N`` concurrent calls, each with its own inputs (``distinct_requests``:
  ``t`` spread over [0, 1] for Paths, seeds 1..N for Samplers), none of them cached before.

Each request is sent from its own thread over gradio's HTTP API (one pooled client, as browsers
keep their connections), all released at once; latency is
per request, from its submission to its answer (what a student's browser waits for, less
rendering). Prints a table; ``--write`` puts it into
``benchmarks/README.md`` between ``<!-- hub:start -->`` and ``<!-- hub:end -->``.

    python benchmarks/hub_burst.py [--n 50] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

START, END = "<!-- hub:start -->", "<!-- hub:end -->"


def distinct_requests(module, n: int) -> list[dict]:
    """``n`` requests of a tab's endpoint with inputs no two of them share (keyword dicts)."""
    if module.API_NAME == "paths":
        return [{"t": round(i / max(n - 1, 1), 6)} for i in range(n)]
    if module.API_NAME == "samplers":
        return [{"seed": i + 1} for i in range(n)]
    # any other widgets tab: vary its first integer (or number) input over its range
    spec = next(s for s in module.ENDPOINT.specs if hasattr(s, "lo"))
    values = np.linspace(spec.lo, spec.hi, n)
    return [{spec.name: (int(round(v)) if spec.integer else float(v))} for v in values]


def client(n: int = 64, timeout: float = 300.0):
    """One pooled HTTP client for up to ``n`` requests in flight (``httpx.Client`` is
    thread-safe): a browser keeps its connection, and opening a client per request would cost
    the load generator more CPU (tens of ms each) than the server spends answering a cached
    request, on the same 2 cores."""
    import httpx

    return httpx.Client(timeout=timeout,
                        limits=httpx.Limits(max_connections=n, max_keepalive_connections=n))


def call(url: str, module, kwargs: dict, timeout: float = 300.0, http=None) -> dict:
    """One request to a widgets tab's named endpoint over gradio's HTTP API (``POST
    /gradio_api/call/<api>``, then its event stream), as a browser or a script would send it;
    inputs not given take their defaults. ``http``: a client to send it with (default: a
    client of its own). Returns the decoded outputs; raises on an error."""
    if http is None:
        with client(1, timeout) as own:
            return call(url, module, kwargs, timeout, own)
    names = module.ENDPOINT.names
    data = [kwargs.get(n, module.ENDPOINT.defaults[n]) for n in names]
    base = url.rstrip("/") + f"/gradio_api/call/{module.API_NAME}"
    event = http.post(base, json={"data": data}).raise_for_status().json()["event_id"]
    kind = None
    with http.stream("GET", f"{base}/{event}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                payload = json.loads(line.split(":", 1)[1])
                if kind == "error":
                    raise RuntimeError(f"{module.API_NAME}: {payload}")
                return payload
    raise RuntimeError(f"{module.API_NAME}: the stream ended without an answer")


def burst(url: str, module, requests: list[dict], timeout: float = 300.0):
    """Send every request of ``requests`` at once, one thread each, released together, over one
    pooled client; return ``(latencies in seconds, outputs)`` (an error from any request
    propagates)."""
    from concurrent.futures import ThreadPoolExecutor

    gate = threading.Barrier(len(requests))

    def one(kwargs):
        gate.wait()
        start = time.perf_counter()
        out = call(url, module, kwargs, timeout, http)
        return time.perf_counter() - start, out

    with client(len(requests), timeout) as http, \
            ThreadPoolExecutor(max_workers=len(requests)) as pool:
        results = list(pool.map(one, requests))
    return np.array([r[0] for r in results]), [r[1] for r in results]


def p95(lat) -> float:
    return float(np.percentile(np.asarray(lat), 95))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_hub(port: int, log_path: Path):
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "apps.hub", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < 300:
        if proc.poll() is not None:
            raise RuntimeError(f"the hub exited; see {log_path}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200:
                return proc, time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.terminate()
    raise RuntimeError("the hub did not start within 300 s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50, help="requests per burst (default 50)")
    parser.add_argument("--write", action="store_true", help="write the table into README.md")
    args = parser.parse_args(argv)

    from apps import hub

    modules = [m for m in hub.TABS if hasattr(m, "ENDPOINT")]
    port = free_port()
    proc, started = start_hub(port, Path("/tmp") / f"hub-burst-{port}.log")
    rows = []
    try:
        url = f"http://127.0.0.1:{port}/"
        for m in modules:
            api = "/" + m.API_NAME
            lat_d, _ = burst(url, m, [{}] * args.n)
            lat_x, _ = burst(url, m, distinct_requests(m, args.n))
            rows.append((m.TITLE, api, lat_d, lat_x))
            print(f"{api}: default p95 {p95(lat_d):.2f} s, distinct p95 {p95(lat_x):.2f} s",
                  flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    cpu = f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    lines = [
        START,
        "## The hub under a class (`benchmarks/hub_burst.py`)",
        "",
        f"{args.n} concurrent requests per endpoint (one thread each, over gradio's HTTP API), "
        "against the hub "
        f"started as `make demo` does (queue: {hub.CONCURRENCY} events of an endpoint at once). "
        "*Default*: every input at its default, the view a student's page opens with "
        "(precomputed at start, then served from the endpoint's LRU cache). *Distinct*: each "
        "request with its own inputs, none cached before (Paths: `t` spread over [0, 1]; "
        "Samplers: seeds 1..N). Latency from submission to answer, in seconds.",
        "",
        f"Machine: {cpu}, shared with other work at the time; {datetime.date.today()}; hub "
        f"start {started:.0f} s.",
        "",
        "| endpoint | burst | answered | median | p95 | max |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for title, api, lat_d, lat_x in rows:
        for kind, lat in (("default", lat_d), ("distinct", lat_x)):
            lines.append(f"| `{api}` ({title}) | {kind} | {len(lat)}/{args.n} | "
                         f"{np.median(lat):.2f} | {p95(lat):.2f} | {lat.max():.2f} |")
    lines.append(END)
    table = "\n".join(lines)
    print(table)
    if args.write:
        readme = ROOT / "benchmarks" / "README.md"
        text = readme.read_text()
        if START in text and END in text:
            text = text.split(START)[0] + table + text.split(END, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n" + table + "\n"
        readme.write_text(text)
        print(f"written to {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
