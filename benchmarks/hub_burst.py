"""The demo hub under a class: fifty requests at once per endpoint, as fifty students opening the
page (identical default requests) or moving their own inputs (distinct requests).

Starts the hub (``python -m apps.hub``, as ``make demo`` does) on a free local port, then for each
tab endpoint registered through ``apps.widgets`` (``TAB.ENDPOINT``):

* **default burst**: ``N`` concurrent calls with every input at its default (the page's first
  view; precomputed at start and served from the endpoint's LRU cache);
* **distinct burst**: ``N`` concurrent calls, each with its own inputs (``distinct_requests``:
  ``t`` spread over [0, 1] for Paths, seeds 1..N for Samplers), none of them cached before.

Latency is per request, from submission to answer, through ``gradio_client`` (what a student's
browser waits for, less rendering). Prints a table; ``--write`` puts it into
``benchmarks/README.md`` between ``<!-- hub:start -->`` and ``<!-- hub:end -->``.

    python benchmarks/hub_burst.py [--n 50] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import socket
import subprocess
import sys
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


def burst(client, api_name: str, requests: list[dict], timeout: float = 300.0) -> np.ndarray:
    """Submit every request of ``requests`` at once; return each one's latency in seconds (an
    exception from any of them propagates)."""
    done: dict[int, float] = {}
    start = time.perf_counter()
    jobs = []
    for i, kwargs in enumerate(requests):
        job = client.submit(api_name=api_name, **kwargs)
        job.add_done_callback(lambda _f, i=i: done.__setitem__(i, time.perf_counter()))
        jobs.append(job)
    for job in jobs:
        job.result(timeout=timeout)
    deadline = time.perf_counter() + 5.0
    while len(done) < len(jobs) and time.perf_counter() < deadline:  # callbacks run after result
        time.sleep(0.01)
    return np.array([done[i] - start for i in range(len(jobs))])


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

    from gradio_client import Client

    from apps import hub

    modules = [m for m in hub.TABS if hasattr(m, "ENDPOINT")]
    port = free_port()
    proc, started = start_hub(port, Path("/tmp") / f"hub-burst-{port}.log")
    rows = []
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        for m in modules:
            api = "/" + m.API_NAME
            lat_d = burst(client, api, [{}] * args.n)
            lat_x = burst(client, api, distinct_requests(m, args.n))
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
        f"{args.n} concurrent requests per endpoint through `gradio_client`, against the hub "
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
