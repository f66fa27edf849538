"""The tiny masked-diffusion transformer under every decoding strategy and every K/V cache.

Two tables (markdown), from the shipped checkpoints (:func:`diffkit.discrete.load_pretrained`):

1. **Accuracy against rounds** on the six list tasks (``tasks`` checkpoint): exact-answer accuracy
   (the answer is in the task's exact answer set) and the mean number of rounds per example, for
   each strategy and round budget, temperature 0.
2. **Caches**: tokens per second of block decoding (LLaDA schedule: blocks of 32, one token per
   round) with each cache against no cache at generation lengths 64 and 256, on the
   ``hmm-default`` checkpoint with a 32-token prompt; the quality kept: the exact negative
   log-likelihood per generated token under the true HMM (beside the exact oracle decoded the same
   way), the share of tokens equal to the uncached output, and the list task accuracy with the
   same cache, per task.

Run: ``python benchmarks/dllm_transformer.py [--device cuda] [--fast] [--out FILE]``; the dLLM
benchmark (``benchmarks/dllm.py``) calls :func:`run` and puts the tables in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffkit.discrete import HMMLanguage, decode, get_task  # noqa: E402
from diffkit.discrete.cache import MODES, KVCacheModel  # noqa: E402
from diffkit.discrete.checkpoints import info, load_pretrained  # noqa: E402
from diffkit.discrete.tasks import TASKS  # noqa: E402

#: (label, strategy, options, fraction of the answer length used as rounds (None: adaptive))
SETTINGS = [
    ("random", "random", {}, 1.0), ("random", "random", {}, 0.5),
    ("confidence", "confidence", {}, 1.0), ("confidence", "confidence", {}, 0.5),
    ("confidence", "confidence", {}, 0.25),
    ("margin", "margin", {}, 1.0), ("margin", "margin", {}, 0.5),
    ("entropy", "entropy", {}, 1.0), ("entropy", "entropy", {}, 0.5),
    ("threshold 0.9", "threshold", {"threshold": 0.9}, None),
    ("threshold 0.7", "threshold", {"threshold": 0.7}, None),
    ("factor 1.0", "factor", {"factor": 1.0}, None),
    ("prophet", "prophet", {}, 1.0),
    ("draft-verify", "draft-verify", {}, 1.0),
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rows_rounds(out) -> float:
    """Mean number of rounds in which an example committed at least one token."""
    if not out.history:
        return float(out.nfe)
    per_row = torch.stack([r.committed.any(-1) for r in out.history]).sum(0)
    return float(per_row.double().mean())


@torch.no_grad()
def task_accuracy(net, device, n: int, seed: int = 0, cache: str = "none", settings=SETTINGS,
                  cache_kwargs: Optional[dict] = None) -> dict:
    """``{(label, steps_fraction): {task: (accuracy, mean rounds)}}`` on ``n`` prompts per task."""
    results: dict = {}
    gen = torch.Generator().manual_seed(seed)
    prompts = {name: get_task(name).sample_prompts(n, generator=gen) for name in TASKS}
    for label, strategy, opts, frac in settings:
        row = {}
        for name in TASKS:
            task = get_task(name)
            a = task.answer_length
            block = 4 if a % 4 == 0 else a
            kw = dict(opts)
            if frac is not None:
                steps = max(a // block, int(round(a * frac)) // (a // block) * (a // block))
                kw["steps"] = steps
            model = KVCacheModel(net, cache, **(cache_kwargs or {})) if cache != "none" else net
            out = decode(model, prompts[name].to(device), a, task.mask_id, strategy=strategy,
                         block_length=block, **kw)
            acc = float(task.score(prompts[name], out.tokens.cpu()).mean())
            row[name] = (acc, rows_rounds(out) if strategy != "draft-verify" else float(out.nfe))
        results[(label, frac)] = row
    return results


@torch.no_grad()
def cache_speed(net, device, gen_lengths=(64, 256), batch: int = 4, prompt_len: int = 32,
                block: int = 32, repeats: int = 1, seed: int = 0) -> list[dict]:
    """Tokens per second and quality of block decoding with each cache mode."""
    lang = HMMLanguage.default()
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for gl in gen_lengths:
        prompt = lang.sample(batch, prompt_len, generator=gen).to(device)
        base_tokens = None
        for mode in MODES:
            model = KVCacheModel(net, mode)
            decode(model, prompt, min(gl, block), lang.mask_id, steps=min(gl, block), block_length=block)  # warm-up
            model.reset()
            best = float("inf")
            for _ in range(repeats):
                _sync(device)
                t0 = time.perf_counter()
                out = decode(model, prompt, gl, lang.mask_id, steps=gl, block_length=block)
                _sync(device)
                best = min(best, time.perf_counter() - t0)
            toks = out.tokens.cpu()
            if base_tokens is None:
                base_tokens = toks
            lp = lang.log_prob(toks) - lang.log_prob(toks[:, :prompt_len])
            rows.append({"gen_length": gl, "mode": mode, "seconds": best, "tok_per_s": batch * gl / best,
                         "nll_per_token": float(-lp.mean() / gl),
                         "same_as_none": float((toks[:, prompt_len:] == base_tokens[:, prompt_len:]).double().mean()),
                         "query_share": model.stats["query_positions"] / max(1, model.stats["calls"] * batch * (prompt_len + gl))})
    return rows


def oracle_nll(gen_lengths=(64, 256), batch: int = 4, prompt_len: int = 32, block: int = 32, seed: int = 0) -> dict:
    """NLL per token of the same decoding with the exact oracle's conditionals (for reference)."""
    lang = HMMLanguage.default()
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for gl in gen_lengths:
        prompt = lang.sample(batch, prompt_len, generator=gen)
        toks = decode(lang.as_model(), prompt, gl, lang.mask_id, steps=gl, block_length=block).tokens
        lp = lang.log_prob(toks) - lang.log_prob(toks[:, :prompt_len])
        out[gl] = float(-lp.mean() / gl)
    return out


def _fmt_acc(v):
    acc, rounds = v
    return f"{100 * acc:.0f}% / {rounds:.1f}"


def speed_table(device, repeats: int = 3, seed: int = 0) -> list[str]:
    """Markdown lines: tokens per second, output and exact NLL with each cache (the part of the
    benchmark that depends on the machine; task accuracy does not)."""
    hnet = load_pretrained("hmm-default", device=device)
    gls = (64, 256)
    batch = 4 if device.type == "cpu" else 64
    speed = cache_speed(hnet, device, gls, batch=batch, repeats=repeats, seed=seed)
    ref = oracle_nll(gls, batch=batch, seed=seed)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    lines = [f"K/V caches (`diffkit.discrete.cache.KVCacheModel`) on {where}, checkpoint `hmm-default`, "
             f"batch {batch}, 32-token prompt, blocks of 32, one token per round (LLaDA schedule, "
             f"`confidence`, temperature 0), best of {repeats} runs. NLL: exact nats per generated token "
             "under the true HMM given the prompt (in brackets: the exact oracle decoding the same way; "
             "greedy decoding can beat it).", "",
             "| gen length | cache | tokens/s | speed-up | NLL/token | tokens equal to no cache | query share |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    base = {r["gen_length"]: r["tok_per_s"] for r in speed if r["mode"] == "none"}
    for r in speed:
        lines.append(f"| {r['gen_length']} | {r['mode']} | {r['tok_per_s']:.0f} | "
                     f"{r['tok_per_s'] / base[r['gen_length']]:.2f}x | {r['nll_per_token']:.4f} "
                     f"({ref[r['gen_length']]:.4f}) | {100 * r['same_as_none']:.1f}% | "
                     f"{100 * r['query_share']:.0f}% |")
    return lines


def run(args=None) -> str:
    """Run both benchmarks; return markdown. ``args`` may carry ``device`` ("cpu"/"cuda"),
    ``fast`` (fewer prompts) and ``seed``."""
    device = torch.device(getattr(args, "device", None) or "cpu")
    fast = bool(getattr(args, "fast", False))
    seed = int(getattr(args, "seed", 0) or 0)
    n = 32 if fast else 200
    t_start = time.perf_counter()
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    lines = [f"### Tiny masked transformer (`diffkit.nn.MaskedTransformer`), {where}", ""]
    tnet = load_pretrained("tasks", device=device)
    meta = info("tasks")["metadata"]
    lines += [f"Checkpoint `tasks` ({sum(p.numel() for p in tnet.parameters())} parameters, trained "
              f"{meta['train_seconds']:.0f} s on a CPU). Accuracy on {n} held-out prompts per task / mean rounds "
              "per example, temperature 0, blocks of 4 (one block for answers of length 4, three for "
              "`latin`'s 12). Rounds = answer length x fraction for the fixed schedules; adaptive otherwise.", ""]
    acc = task_accuracy(tnet, device, n, seed)
    lines.append("| strategy | rounds fraction | " + " | ".join(TASKS) + " |")
    lines.append("| --- | --- | " + " | ".join("---" for _ in TASKS) + " |")
    for (label, frac), row in acc.items():
        lines.append(f"| {label} | {'adaptive' if frac is None else frac} | "
                     + " | ".join(_fmt_acc(row[t]) for t in TASKS) + " |")
    lines.append("")

    speed_lines = speed_table(device, repeats=1 if fast else 3, seed=seed)
    conf_settings = [("confidence", "confidence", {}, 1.0)]
    variants = [(mode, {}) for mode in MODES] + [("delayed", {"refresh_every": 2})]
    cache_acc = {}
    for mode, kw in variants:
        label = mode + (f", refresh every {kw['refresh_every']}" if kw else "")
        cache_acc[label] = task_accuracy(tnet, device, n, seed, cache=mode, settings=conf_settings,
                                         cache_kwargs=kw)[("confidence", 1.0)]
    mean_acc = {label: sum(v[0] for v in r.values()) / len(r) for label, r in cache_acc.items()}
    lines += speed_lines
    lines += ["", "_query share: positions run through the network per call, relative to a full forward._", ""]
    lines += [f"Task accuracy with each cache (`tasks` checkpoint, {n} prompts per task, `confidence`, one "
              "token per round, blocks of 4):", ""]
    lines.append("| cache | " + " | ".join(TASKS) + " | mean |")
    lines.append("| --- | " + " | ".join("---" for _ in TASKS) + " | --- |")
    for label, r in cache_acc.items():
        lines.append(f"| {label} | " + " | ".join(f"{100 * r[t][0]:.1f}%" for t in TASKS)
                     + f" | {100 * mean_acc[label]:.1f}% |")
    lines += ["", f"_Total time {time.perf_counter() - t_start:.0f} s._", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="tiny transformer: strategies and K/V caches")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    parser.add_argument("--speed-only", action="store_true", help="only the K/V-cache speed table")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.speed_only:
        md = "\n".join(speed_table(torch.device(args.device), seed=args.seed)) + "\n"
    else:
        md = run(args)
    print(md)
    if args.out is not None:
        args.out.write_text(md)


if __name__ == "__main__":
    main()
