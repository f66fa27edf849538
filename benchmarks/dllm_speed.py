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
32, batches (``--batches``, default 1, 8 and 32). On the CPU the full grid would take hours (one
uncached round at length 1024 and batch 32 runs 33k positions through 26M parameters), so the
CPU default cuts it: every method at length 256 and batch 1, the caches at batch 8, no cache and
the dual caches at length 1024 and batch 1, batch 32 not at all; and each decode is timed over
its first ``--rounds`` model calls only (one block; marked ``~``: tokens per second of those
rounds, one token per round; the caches' per-round cost is the same in every block for dual and
dual-prompt, and largest in the first block for prefix). ``--full-grid --rounds 0`` times
everything in full. ``--write`` puts the table into ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import date
from pathlib import Path

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


class Limited:
    """A model that stops the decode after ``limit`` calls (to time the first rounds of a long
    generation at its full sequence length)."""

    def __init__(self, model, limit: int, mask_id: int):
        self.model, self.limit, self.calls, self.mask_id = model, limit, 0, mask_id
        self.masks: list[int] = []  # masked positions seen at each call (sequences of the batch)
        if hasattr(model, "begin_block"):
            self.begin_block = model.begin_block

    def __call__(self, tokens):
        self.masks.append(int((tokens == self.mask_id).sum()))
        if self.calls >= self.limit:
            raise _Stop
        self.calls += 1
        return self.model(tokens)


class _Partial:
    def __init__(self, nfe, committed):
        self.nfe, self.committed = nfe, committed


@torch.no_grad()
def time_decode(model, prompt, gen_length, mask_id, device, max_rounds=None, **kw):
    """Seconds and the decode output (``max_rounds``: stop after that many model calls; the
    output then only carries ``nfe``)."""
    if max_rounds is not None:
        model = Limited(model, max_rounds, mask_id)
    _sync(device)
    t0 = time.perf_counter()
    try:
        out = decode(model, prompt, gen_length, mask_id, block_length=BLOCK, **kw)
    except _Stop:  # tokens committed by the calls made: masks at the first call minus at the stop
        out = _Partial(model.calls, model.masks[0] - model.masks[-1])
    _sync(device)
    return time.perf_counter() - t0, out


def run(args) -> list[str]:
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    net, params, shape = build(device, scale=args.logit_scale)
    mask_id = net.mask_id
    gen = torch.Generator().manual_seed(0)
    rows = []
    for length in args.lengths:
        for batch in args.batches:
            prompt = torch.randint(0, shape["vocab"], (batch, PROMPT), generator=gen).to(device)
            methods = [(c, "confidence", {}) for c in CACHES] + [("none", s, o) for s, o in FAST]
            partial = args.rounds or None
            if device.type == "cpu" and not args.full_grid:
                if length > 256:
                    methods = [("none", "confidence", {}), ("dual", "confidence", {}),
                               ("dual-prompt", "confidence", {})]
                elif batch > 1:
                    methods = [(c, "confidence", {}) for c in CACHES]
                if batch > 8 or (length > 256 and batch > 1):
                    continue
            # warm-up: one block
            time_decode(net, prompt, BLOCK, mask_id, device, steps=BLOCK)
            base = None
            for cache, strategy, opts in methods:
                if strategy == "draft-verify" and partial:
                    continue  # it evaluates drafted batches: timed in full runs only
                model = net if cache == "none" else KVCacheModel(net, cache, mask_id=mask_id)
                if cache == "none" and strategy == "confidence" and args.cuda_graphs and device.type == "cuda":
                    model = Graphed(net)
                kw = dict(opts, strategy=strategy)
                if strategy == "confidence":
                    kw["steps"] = length
                secs, out = time_decode(model, prompt, length, mask_id, device, max_rounds=partial, **kw)
                toks = out.committed if isinstance(out, _Partial) else length * batch
                tps = toks / secs
                if base is None:
                    base = tps
                label = f"{cache}" if strategy == "confidence" else f"{strategy} {opts}"
                rows.append(dict(length=length, batch=batch, method=label, tps=tps, calls=out.nfe,
                                 speedup=tps / base, partial=partial))
                print(f"L={length} B={batch} {label}: {tps:.4g} tok/s, {out.nfe} calls, "
                      f"{tps / base:.2f}x", flush=True)
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"CPU ({platform.processor() or platform.machine()}), {args.threads} threads")
    lines = [f"Random masked transformer, {params / 1e6:.1f}M parameters (width {shape['dim']}, "
             f"{shape['depth']} layers, {shape['heads']} heads, vocabulary {shape['vocab']}), "
             f"{'bfloat16' if device.type == 'cuda' else 'float32'}, on {where}, {date.today()}, "
             f"torch {torch.__version__}. {PROMPT}-token prompt, blocks of {BLOCK}; caches with "
             "`confidence` one token per round; speed-up over no cache. `~`: timed over the first "
             f"{args.rounds} model calls only.", "",
             "| length | batch | method | tokens/s | model calls | speed-up |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        mark = "~" if r["partial"] else ""
        lines.append(f"| {r['length']} | {r['batch']} | {r['method']} | {mark}{r['tps']:.4g} | "
                     f"{r['calls']} | {mark}{r['speedup']:.2f}x |")
    return lines


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
        write_section(f"speed-{dev}", f"### dLLM decoding speed at a realistic size ({dev.upper()})\n\n"
                      + text)


if __name__ == "__main__":
    main()
