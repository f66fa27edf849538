"""Training throughput of ``diffkit.train.fit``: samples per second for the shipped architectures.

``python benchmarks/train.py [--device cpu|cuda] [--threads N] [--steps N] [--write]``

Each row times ``fit`` (AdamW, EMA, gradient clipping, the one x0 loss; no progress bar) on one
model and batch size: a short warm-up run first (imports, allocator, kernels), then ``--steps``
steps, timed end to end; samples/s = batch x steps / seconds. Rows: the 2-D ``TimeMLP(2, 128, 3)``
of the ``gmm8-*`` and ``moons`` models on ``gmm8`` and the class-conditional digits ``UNet`` of the
``digits`` model (label dropout 0.1); on CUDA also the UNet under bfloat16 autocast. ``--write``
replaces the section between the ``train:start`` / ``train:end`` markers of
``benchmarks/README.md`` with the table, the machine, its load average and the date.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffkit import data, nn, train  # noqa: E402
from diffkit.pretrained import RECIPES  # noqa: E402


def _case(name: str, batch: int, device: str, autocast=None):
    r = RECIPES[name]
    torch.manual_seed(0)
    if r["net"] == "UNet":
        x, labels = data.digits("train")
        net = nn.UNet(**r["arch"]).to(device)
        extra = dict(labels=labels, label_dropout=0.1)
    else:
        x, extra = data.toy_mixture("gmm8"), {}
        net = nn.TimeMLP(**r["arch"]).to(device)
    return dict(model=net, data=x, path=r["path"], loss=r["loss"], target=r["target"], batch_size=batch,
                lr=r["lr"], ema_decay=r.get("ema_decay", 0.999), device=device, autocast=autocast,
                progress=False, **extra)


def time_fit(name: str, batch: int, steps: int, device: str, autocast=None) -> float:
    """Samples per second of ``fit`` for recipe ``name``'s network at ``batch``."""
    train.fit(steps=3, **_case(name, batch, device, autocast))  # warm-up
    case = _case(name, batch, device, autocast)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train.fit(steps=steps, **case)
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def machine(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    if device == "cuda":
        text += f", {torch.cuda.get_device_name()}"
    load = os.getloadavg()
    return f"{text}; load average {load[0]:.1f} (1 min) while measuring; torch {torch.__version__}"


def table(device: str, steps: int) -> str:
    rows = [("gmm8-elbo", 256), ("gmm8-elbo", 1024), ("digits", 64), ("digits", 128)]
    out = ["| model | network | batch | autocast | samples/s | steps/s |", "| --- | --- | --- | --- | --- | --- |"]
    cases = [(n, b, None) for n, b in rows]
    if device == "cuda":
        cases += [("digits", 128, "bf16"), ("digits", 1024, None), ("digits", 1024, "bf16")]
    for name, batch, ac in cases:
        n_steps = steps if RECIPES[name]["net"] == "TimeMLP" else max(steps // 4, 10)
        sps = time_fit(name, batch, n_steps, device, ac)
        arch = "TimeMLP(2, 128, 3)" if RECIPES[name]["net"] == "TimeMLP" else "UNet(base 16, 10 classes)"
        out.append(f"| {name} | {arch} | {batch} | {ac or '-'} | {sps:,.0f} | {sps / batch:.1f} |")
        print(out[-1], flush=True)
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible")
    body = table(args.device, args.steps)
    section = (f"### {args.device.upper()}\n\nMachine: {machine(args.device)}. Date: {time.strftime('%Y-%m-%d')}. "
               f"Command: `python benchmarks/train.py --device {args.device}"
               f"{f' --threads {args.threads}' if args.threads else ''} --steps {args.steps}`.\n\n{body}\n")
    print(section)
    if args.write:
        readme = ROOT / "benchmarks" / "README.md"
        text = readme.read_text()
        start, end = f"<!-- train-{args.device}:start -->", f"<!-- train-{args.device}:end -->"
        block = f"{start}\n{section}{end}"
        if start in text:
            text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
        readme.write_text(text)


if __name__ == "__main__":
    main()
