"""dLLM decoding speed at a realistic model size: ``python benchmarks/dllm_speed.py``.

A randomly initialised :class:`diffkit.nn.MaskedTransformer` of a realistic shape decodes with
:func:`diffkit.discrete.decode`: no cache, each K/V cache of :mod:`diffkit.discrete.cache`
(with ``confidence``, one token per round, LLaDA's schedule) and the fast strategies
(``threshold``, ``factor``, ``eb``, ``credit`` and lossless ``draft-verify``, no cache). Reported:
tokens per second, model calls, and the speed-up over plain ``confidence`` decoding (no cache).

Shapes. CPU (default): width 512, 8 layers, 8 heads, MLP ratio 4, vocabulary 512: about 26M
parameters, float32. GPU (``--device cuda``): LLaDA-like, width 2048, 16 layers, 16 heads,
vocabulary 32768 (about 1B parameters), bfloat16; ``--cuda-graphs`` replays a captured CUDA graph
of the full forward for the uncached rounds (the one shape that repeats).

Random weights give random confidences: the number of rounds of the adaptive rules is a property
of the network and means nothing here beyond "what one call costs"; the output scale
``--logit-scale`` (default 6) spreads the confidences so that thresholds fire sometimes. The
caches' cost per call, the point of this benchmark, does not depend on the weights.

Grid: generation lengths (``--lengths``, default 256 and 1024) after a 32-token prompt, blocks of
32, batches (``--batches``, default 1, 8 and 32). On the CPU a full decode of the whole grid would
take hours (one uncached round at length 1024 and batch 32 runs 33k positions through 26M
parameters), so the CPU default follows a plan (:func:`cpu_plan`) sized to about a quarter of an
hour on two shared cores:

- length 256, batch 1: every method; no cache and the caches timed over the whole first block (32
  model calls, 32 tokens per row), the fast strategies over their first 8 calls, draft-verify over
  its first 3 (tokens per second of the calls made);
- elsewhere each method is timed over its first 1-4 calls. No cache and the fast strategies run a
  full forward per call, whose cost does not change from call to call, so a few calls give their
  rate. A cache's block is projected from its calls: ``n_full`` full forwards (the first call; for
  dual-prompt also the refresh after half a block) and ``32 - n_full`` cached rounds at the median
  cached-call time (exact in structure for dual and dual-prompt, whose blocks all cost the same;
  the first, slowest block for prefix and delayed). At length 256 and batch 1 the projection is
  printed beside the measured block, as a check of the method;
- left out where one call costs minutes: prefix and delayed at batch 32 and at length 1024 with
  batch 8 (their first-block rounds recompute nearly every position, as no cache does), the fast
  strategies at batch 32 and at length 1024 with batch 8 (a full forward per call, as no cache),
  draft-verify beyond batch 1 and length 256 (each call evaluates up to 8 drafted sequences per
  row), and length 1024 with batch 32 altogether (one uncached call runs 33k positions).

``--full-grid`` times every method everywhere (``--rounds N``: each over its first N calls;
0: whole decodes; the GPU default). ``--write`` puts the table into ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Optional

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffkit.discrete import decode  # noqa: E402
from diffkit.discrete.cache import KVCacheModel  # noqa: E402
from diffkit.nn import MaskedTransformer  # noqa: E402

PROMPT, BLOCK = 32, 32
SHAPES = {"cpu": dict(dim=512, depth=8, heads=8, mlp_ratio=4, vocab=512),
          "cuda": dict(dim=2048, depth=16, heads=16, mlp_ratio=4, vocab=32768)}
CACHES = ("none", "prefix", "dual", "dual-prompt", "delayed")
FAST = (("threshold", {"threshold": 0.9}), ("factor", {"factor": 1.0}), ("eb", {"gamma": 0.1}),
        ("credit", {"threshold": 0.9}), ("draft-verify", {"draft": 8}))


class Scaled(torch.nn.Module):
    """The network with its logits multiplied by ``scale`` (see the module docstring)."""

    def __init__(self, net, scale: float):
        super().__init__()
        self.net, self.scale, self.mask_id = net, scale, net.mask_id

    def forward(self, tokens, positions=None, kv_hook=None):
        return self.net(tokens, positions=positions, kv_hook=kv_hook) * self.scale


class Graphed:
    """The full forward replayed from a captured CUDA graph, one graph per input shape."""

    def __init__(self, net):
        self.net, self.mask_id, self.graphs = net, net.mask_id, {}

    @torch.no_grad()
    def __call__(self, tokens):
        key = tuple(tokens.shape)
        if key not in self.graphs:
            static = tokens.clone()
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(2):
                    self.net(static)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                out = self.net(static)
            self.graphs[key] = (g, static, out)
        g, static, out = self.graphs[key]
        static.copy_(tokens)
        g.replay()
        return out.clone()


def build(device: torch.device, seed: int = 0, scale: float = 6.0):
    shape = SHAPES["cuda" if device.type == "cuda" else "cpu"]
    torch.manual_seed(seed)
    net = MaskedTransformer(vocab_size=shape["vocab"] + 1, max_len=PROMPT + 1024, dim=shape["dim"],
                            depth=shape["depth"], heads=shape["heads"], mlp_ratio=shape["mlp_ratio"],
                            mask_id=shape["vocab"])
    net = net.to(device, torch.bfloat16 if device.type == "cuda" else torch.float32).eval()
    params = sum(p.numel() for p in net.parameters())
    return Scaled(net, scale), params, shape


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Stop(Exception):
    pass


class Timed:
    """A model that times each call and stops the decode after ``limit`` calls (``None``: never),
    to time the first rounds of a long generation at its full sequence length. ``masks``: masked
    positions of the batch's rows at each call (for ``draft-verify`` with one row, whose calls after
    the first evaluate drafted copies: the row's own masks, one more than the most-masked copy)."""

    def __init__(self, model, limit: Optional[int], mask_id: int, device, drafted: bool = False):
        self.model, self.limit, self.mask_id, self.device = model, limit, mask_id, device
        self.drafted, self.calls = drafted, 0
        self.masks: list[int] = []
        self.seconds: list[float] = []
        for name in ("begin_decode", "begin_block"):
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))

    def __call__(self, tokens):
        per_row = (tokens == self.mask_id).sum(1)
        if self.drafted and self.calls > 0:
            self.masks.append(int(per_row.max()) + 1)
        else:
            self.masks.append(int(per_row.sum()))
        if self.limit is not None and self.calls >= self.limit:
            raise _Stop
        self.calls += 1
        _sync(self.device)
        t0 = time.perf_counter()
        out = self.model(tokens)
        _sync(self.device)
        self.seconds.append(time.perf_counter() - t0)
        return out


@torch.no_grad()
def time_decode(model, prompt, gen_length, mask_id, device, max_rounds=None, **kw) -> Timed:
    """Decode (stopping after ``max_rounds`` model calls when given) and return the
    :class:`Timed` record: per-call seconds and masks."""
    timed = Timed(model, max_rounds, mask_id, device, drafted=kw.get("strategy") == "draft-verify")
    try:
        out = decode(timed, prompt, gen_length, mask_id, block_length=BLOCK, **kw)
        timed.masks.append(int((out.tokens == mask_id).sum()))
    except _Stop:
        pass
    return timed


#: full forwards in a block of ``BLOCK`` rounds, one token per round: at the block start, and for
#: dual-prompt again once half a block was committed
FULL_PER_BLOCK = {"prefix": 1, "dual": 1, "dual-prompt": 2, "delayed": 1}

#: the CPU default plan: (length, batch) -> [(cache, strategy, options, calls timed)];
#: ``BLOCK`` calls: the whole first block timed; fewer: per-call times (see the docstring)
_ALL_CACHES = [(c, "confidence", {}) for c in CACHES]
_FASTS = [("none", s, o) for s, o in FAST if s != "draft-verify"]


def cpu_plan():
    plan = {}
    plan[(256, 1)] = ([(c, s, o, BLOCK) for c, s, o in _ALL_CACHES] + [(c, s, o, 8) for c, s, o in _FASTS]
                      + [("none", "draft-verify", {"draft": 8}, 3)])
    plan[(256, 8)] = ([("none", "confidence", {}, 2)] + [(c, s, o, 4) for c, s, o in _ALL_CACHES[1:]]
                      + [(c, s, o, 2) for c, s, o in _FASTS])
    plan[(256, 32)] = [("none", "confidence", {}, 1), ("dual", "confidence", {}, 4),
                       ("dual-prompt", "confidence", {}, 4)]
    plan[(1024, 1)] = ([("none", "confidence", {}, 2)] + [(c, s, o, 4) for c, s, o in _ALL_CACHES[1:]]
                       + [(c, s, o, 2) for c, s, o in _FASTS])
    plan[(1024, 8)] = [("none", "confidence", {}, 1), ("dual", "confidence", {}, 4),
                       ("dual-prompt", "confidence", {}, 4)]
    # (1024, 32) is left out: one uncached call runs 33k positions, minutes on a loaded 2-core CPU
    return plan


def _row(length, batch, cache, strategy, opts, timed: Timed, calls_asked):
    """Tokens per second of one timed decode: over the calls made; for a cache timed over fewer
    calls than a block, projected over a block from its first (full) call and the median cached
    call."""
    secs = sum(timed.seconds)
    committed = timed.masks[0] - timed.masks[-1]
    label = cache if strategy == "confidence" else f"{strategy} {opts}"
    row = dict(length=length, batch=batch, method=label, calls=timed.calls, secs=secs, committed=committed,
               tps=committed / secs if secs > 0 else float("nan"), how="measured")
    if cache != "none" and strategy == "confidence" and timed.calls >= 2:
        full, cached = timed.seconds[0], statistics.median(timed.seconds[1:])
        n_full = FULL_PER_BLOCK[cache]
        block = n_full * full + (BLOCK - n_full) * cached
        row["projected"] = BLOCK * batch / block
        row["full_s"], row["cached_s"] = full, cached
        if calls_asked < BLOCK:
            row["tps"], row["how"] = row["projected"], "projected"
    return row


def speedup_cell(method: str, per_call: float, batch: int, wall: float) -> str:
    """The speed-up column: wall clock for the caches; for the strategies without a cache, whose
    calls are the same full forward as plain decoding, the ratio of tokens per call (what does not
    depend on the machine's load), with the wall-clock ratio beside it."""
    if " " not in method:  # a cache (or none)
        return f"{wall:.2f}x"
    return f"{per_call / batch:.2f}x (wall clock {wall:.2f}x)"


def run(args) -> list[str]:
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    net, params, shape = build(device, scale=args.logit_scale)
    mask_id = net.mask_id
    gen = torch.Generator().manual_seed(0)
    plan = cpu_plan() if device.type == "cpu" and not args.full_grid else None
    cells = sorted(plan) if plan else [(n, b) for n in args.lengths for b in args.batches]
    cells = [c for c in cells if c[0] in args.lengths and c[1] in args.batches]
    rows = []
    t_start = time.perf_counter()
    loads = []
    for length, batch in cells:
        prompt = torch.randint(0, shape["vocab"], (batch, PROMPT), generator=gen).to(device)
        if plan:
            methods = plan[(length, batch)]
        else:
            methods = ([(c, "confidence", {}, args.rounds or None) for c in CACHES]
                       + [("none", s, o, args.rounds or None) for s, o in FAST])
        with torch.no_grad():  # warm-up: one forward at this shape
            net(torch.cat([prompt, torch.full((batch, length), mask_id, device=device)], 1))
        base = None
        for cache, strategy, opts, calls in methods:
            model = net if cache == "none" else KVCacheModel(net, cache, mask_id=mask_id)
            if cache == "none" and strategy == "confidence" and args.cuda_graphs and device.type == "cuda":
                model = Graphed(net)
            kw = dict(opts, strategy=strategy)
            if strategy == "confidence":
                kw["steps"] = length
            timed = time_decode(model, prompt, length, mask_id, device, max_rounds=calls, **kw)
            row = _row(length, batch, cache, strategy, opts, timed, calls or BLOCK)
            if base is None:
                base = row["tps"]
            row["speedup"] = row["tps"] / base
            if "projected" in row:
                row["projected_speedup"] = row["projected"] / base
            rows.append(row)
            if hasattr(os, "getloadavg"):
                loads.append(os.getloadavg()[0])
            print(f"L={length} B={batch} {row['method']}: {row['tps']:.4g} tok/s ({row['how']}), "
                  f"{row['calls']} calls in {row['secs']:.1f} s, {row['speedup']:.2f}x "
                  f"[{time.perf_counter() - t_start:.0f} s]", flush=True)
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), "
                  f"{args.threads} torch threads")
    load = (f"; load average {min(loads):.1f}-{max(loads):.1f} (1 min) while timing" if loads else "")
    lines = [f"Random masked transformer, {params / 1e6:.1f}M parameters (width {shape['dim']}, "
             f"{shape['depth']} layers, {shape['heads']} heads, vocabulary {shape['vocab']}), "
             f"{'bfloat16' if device.type == 'cuda' else 'float32'}, on {where}{load}; {date.today()}, "
             f"torch {torch.__version__}; {time.perf_counter() - t_start:.0f} s in all. {PROMPT}-token "
             f"prompt, blocks of {BLOCK}; caches with `confidence`, one token per round; speed-up "
             "over plain `confidence` decoding without a cache at the same length and batch.", "",
             "| length | batch | method | tokens/s | how | model calls timed | tokens per call | "
             "s per full call | s per cached call | speed-up |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        full = f"{r['full_s']:.2f}" if "full_s" in r else (
            f"{r['secs'] / r['calls']:.2f}" if r["method"] == "none" and r["calls"] else "")
        cached = f"{r['cached_s']:.3f}" if "cached_s" in r else ""
        how = r["how"] + (f" (projected {r['projected_speedup']:.2f}x)" if r["how"] == "measured"
                          and "projected_speedup" in r else "")
        per_call = r["committed"] / r["calls"] if r["calls"] else float("nan")
        lines.append(f"| {r['length']} | {r['batch']} | {r['method']} | {r['tps']:.3g} | {how} | "
                     f"{r['calls']} | {per_call:.1f} | {full} | {cached} | "
                     f"{speedup_cell(r['method'], per_call, r['batch'], r['speedup'])} |")
    return lines


CUT = ("Not timed on the CPU, for time (the plan in `benchmarks/dllm_speed.py`): length 1024 with "
       "batch 32 (one uncached call runs 33k positions, minutes under this load); prefix and delayed "
       "at batch 32 and at length 1024 with batch 8 (their first-block rounds recompute nearly every "
       "position, as no cache does); the fast strategies there too (a full forward per call, the cost "
       "of no cache); draft-verify beyond length 256 and batch 1 (each call evaluates up to 8 drafted "
       "sequences per row). `--full-grid --rounds 0` times everything over whole decodes.")
GPU = ("GPU half: `python benchmarks/dllm_speed.py --device cuda --cuda-graphs --full-grid --write` "
       "builds the LLaDA-like shape (width 2048, 16 layers, 16 heads, vocabulary 32768, about 1B "
       "parameters, bfloat16), decodes the whole grid and replays a captured CUDA graph for the "
       "uncached full forwards. No GPU was lent to this work: that table is not here and the GPU path "
       "has not been run.")


def section(dev: str, command: str, table: str, plan: bool) -> str:
    """The README section: the command, the table, what the plan left out, the GPU note."""
    parts = [f"### dLLM decoding speed at a realistic size ({dev.upper()})", "", f"`{command}`", "",
             table, "", "`how`: *measured* is tokens per second over the calls timed; *projected* is a "
             "cache's block of 32 rounds from its per-call times (see the module docstring); at length "
             "256 and batch 1 both are given for the caches, a check of the projection."]
    if plan:
        parts += ["", CUT]
    if dev == "cpu":
        parts += ["", GPU]
    return "\n".join(parts)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--lengths", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--logit-scale", type=float, default=6.0)
    p.add_argument("--rounds", type=int, default=None,
                   help="time only this many model calls per decode (CPU default 32; 0: all)")
    p.add_argument("--full-grid", action="store_true", help="time every method everywhere")
    p.add_argument("--cuda-graphs", action="store_true")
    p.add_argument("--write", action="store_true")
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 32 if args.device == "cpu" else 0
    lines = run(args)
    text = "\n".join(lines)
    print(text)
    if args.write:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from dllm import write_section  # the dLLM benchmarks' README sections

        dev = "gpu" if args.device.startswith("cuda") else "cpu"
        command = "python benchmarks/dllm_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section(f"speed-{dev}", section(dev, command.strip(), text, plan=args.device == "cpu"
                                              and not args.full_grid))


if __name__ == "__main__":
    main()
