"""Reproduce the shipped masked-diffusion checkpoints: ``python -m diffkit.discrete.train_checkpoints``.

Trains :class:`diffkit.nn.MaskedTransformer` with the continuous-time masked-diffusion ELBO
(MDLM, Sahoo et al. 2024, eq. 10; :func:`diffkit.discrete.masking.mdlm_loss`) on the CPU, with fixed seeds, and writes
``diffkit/checkpoints/<name>.safetensors`` and ``<name>.json`` (configuration, training recipe and
measured quality). Checkpoints:

``hmm-default``
    The course's oracle language :meth:`HMMLanguage.default` (3 tokens, ``mask_id = 3``), trained
    on sequences of random length 4..288 so that it decodes short exact-check sequences and the
    length-256 generations of the cache benchmark.
``tasks``
    One network for all six list tasks of :mod:`diffkit.discrete.tasks` (``symbols=4, length=4``,
    shared vocabulary, ``mask_id = 14``); the prompt is never masked, the answer is.

Quality recorded in the json (``metadata.quality``): for the HMM, the exact KL and total variation
between the true law of the first 6 tokens and the network's law under left-to-right ancestral
decoding (enumerated, no sampling), and the mean KL of the network's conditionals to the exact
forward-backward conditionals under random masks; for the tasks, exact-answer accuracy of greedy
one-token-per-round confidence decoding on held-out prompts. Seeds are fixed and the run uses 2
CPU threads (``torch.set_num_threads(2)``), so a rerun with the same torch build and CPU gives the
same weights; another torch version or CPU gives a statistically equivalent network (the json
records torch's version, the seconds taken and the measured quality). The shipped files were
made by this command on an x86-64 CPU (2 threads, torch 2.11): about 140 s (``hmm-default``) and
185 s (``tasks``).

Options: ``--only hmm-default|tasks``, ``--out DIR``, ``--fast`` (a few steps; for smoke tests).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from ..nn import MaskedTransformer
from ..train import save_checkpoint, train
from .decode import decode
from .hmm import HMMLanguage, all_sequences
from .masking import mdlm_loss
from .tasks import TASKS, get_task

__all__ = ["CHECKPOINT_DIR", "RECIPES", "training_loss", "train_hmm", "train_tasks", "hmm_quality", "tasks_quality", "main"]

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"

#: Architecture and training recipe of each shipped checkpoint.
RECIPES = {
    "hmm-default": {"arch": {"dim": 64, "depth": 2, "heads": 4, "mlp_ratio": 4, "max_len": 288},
                    "steps": 3000, "lr": 3e-3, "tokens_per_batch": 4096, "min_len": 4, "seed": 0},
    "tasks": {"arch": {"dim": 64, "depth": 3, "heads": 4, "mlp_ratio": 2},
              "steps": 2500, "lr": 2e-3, "batch": 64, "seed": 0, "symbols": 4, "length": 4},
}


def training_loss(net, x0: Tensor, maskable: Tensor, mask_id: int, generator: torch.Generator,
                  t_min: float = 1e-3) -> Tensor:
    """The MDLM training loss per maskable token: :func:`diffkit.discrete.masking.mdlm_loss`
    (the continuous-time NELBO, Sahoo et al. 2024, eq. 10, linear schedule ``alpha = 1 - t``)
    with low-discrepancy times ``t_b = t_min + (1 - t_min) ((u + b / B) mod 1)`` (MDLM Sec. 4.1;
    Kingma et al. 2021, VDM) and the prompt (``~maskable``) kept visible, summed over the batch
    and divided by the number of maskable tokens (so batches of different lengths weigh alike)."""
    b = x0.shape[0]
    u = torch.rand((), generator=generator, dtype=torch.float64)
    t = t_min + (1 - t_min) * ((u + torch.arange(b, dtype=torch.float64) / b) % 1.0)
    per_seq = mdlm_loss(net, x0, mask_id, "linear", t=t, generator=generator, keep=~maskable, reduction="none")
    return per_seq.sum() / maskable.sum().clamp(min=1)


# ---------------------------------------------------------------------------------------- HMM
def hmm_batch(lang: HMMLanguage, recipe: dict, generator: torch.Generator) -> Tensor:
    """A batch of HMM sequences of one random length (log-uniform in [min_len, max_len])."""
    lo, hi = recipe["min_len"], recipe["arch"]["max_len"]
    u = float(torch.rand((), generator=generator))
    length = int(round(math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))))
    n = max(8, min(256, recipe["tokens_per_batch"] // length))
    return lang.sample(n, length, generator=generator)


def train_hmm(recipe: Optional[dict] = None, steps: Optional[int] = None, progress: bool = True):
    """Train the ``hmm-default`` network; returns ``(net, seconds, losses)`` (EMA weights)."""
    recipe = recipe or RECIPES["hmm-default"]
    lang = HMMLanguage.default()
    torch.manual_seed(recipe["seed"])
    net = MaskedTransformer(vocab_size=lang.vocab_size + 1, mask_id=lang.mask_id, **recipe["arch"])
    gen = torch.Generator().manual_seed(recipe["seed"] + 1)

    def loss_fn(model):
        x0 = hmm_batch(lang, recipe, gen)
        return training_loss(model, x0, torch.ones_like(x0, dtype=torch.bool), lang.mask_id, gen)

    res = train(net, loss_fn, steps or recipe["steps"], lr=recipe["lr"], warmup=100, ema_decay=0.995,
                progress=progress, desc="hmm-default")
    return res.ema, res.seconds, res.losses


@torch.no_grad()
def hmm_quality(net, lang: Optional[HMMLanguage] = None, length: int = 6, context: int = 64,
                n_cond: int = 256, seed: int = 0) -> dict:
    """Exact quality of a network on an HMM language.

    ``law_kl``/``law_tv``: KL(true || net) and TV between the true law of ``x_1..x_length`` and the
    network's law under left-to-right ancestral decoding ``q(x) = prod_i q(x_i | x_<i, rest masked)``,
    with the sequence embedded in a masked context of ``context`` positions (the rest marginalised),
    enumerated over all ``V**length`` sequences. ``cond_kl``: mean over masked positions of
    ``KL(p(x_i | visible) || q(x_i | visible))`` on ``n_cond`` length-``context`` HMM samples with a
    uniform random masking rate (exact forward-backward conditionals).
    """
    lang = lang or HMMLanguage.default()
    v, m = lang.vocab_size, lang.mask_id
    seqs = all_sequences(v, length)  # [V^L, L]
    k = seqs.shape[0]
    logq = torch.zeros(k, dtype=torch.float64)
    for i in range(length):
        x = torch.full((k, context), m, dtype=torch.long)
        x[:, :i] = seqs[:, :i]
        lp = torch.log_softmax(net(x)[:, i, :v].double(), -1)
        logq += lp.gather(1, seqs[:, i: i + 1])[:, 0]
    logp = lang.log_prob(seqs)
    p, q = logp.exp(), logq.exp()
    gen = torch.Generator().manual_seed(seed)
    x0 = lang.sample(n_cond, context, generator=gen)
    rate = torch.rand(n_cond, 1, generator=gen)
    masked = torch.rand(n_cond, context, generator=gen) < rate
    xt = torch.where(masked, torch.full_like(x0, m), x0)
    pe = lang.marginals(xt, m)  # [n, L, V]
    lq = torch.log_softmax(net(xt)[..., :v].double(), -1)
    kl = (pe * (torch.log(pe.clamp_min(1e-300)) - lq)).sum(-1)
    return {"law_kl_nats": float((p * (logp - logq)).sum()), "law_tv": float(0.5 * (p - q).abs().sum()),
            "law_length": length, "cond_kl_nats": float(kl[masked].mean()), "cond_context": context,
            "true_entropy_nats": float(-(p * logp).sum())}


# ---------------------------------------------------------------------------------------- tasks
def task_data(recipe: dict, n_per_task: int, seed: int) -> dict:
    """Sampled (prompt, answer) pairs per task as full sequences ``[n, P + A]``."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name in TASKS:
        task = get_task(name, recipe["symbols"], recipe["length"])
        prompts, answers = task.sample(n_per_task, generator=gen)
        out[name] = (task, torch.cat([prompts, answers], 1))
    return out


def train_tasks(recipe: Optional[dict] = None, steps: Optional[int] = None, progress: bool = True):
    """Train the multi-task ``tasks`` network; returns ``(net, seconds, losses)`` (EMA weights).

    Each step draws ``batch`` examples of every task (fresh samples from a pool of 4096 per task)
    and sums the six per-task MDLM losses; only answer tokens are masked.
    """
    recipe = recipe or RECIPES["tasks"]
    data = task_data(recipe, 4096, recipe["seed"] + 2)
    task0 = next(iter(data.values()))[0]
    max_len = max(t.prompt_length + t.answer_length for t, _ in data.values())
    torch.manual_seed(recipe["seed"])
    net = MaskedTransformer(vocab_size=task0.vocab_size + 1, mask_id=task0.mask_id, max_len=max_len, **recipe["arch"])
    gen = torch.Generator().manual_seed(recipe["seed"] + 1)

    def loss_fn(model):
        total = 0.0
        for task, seqs in data.values():
            idx = torch.randint(seqs.shape[0], (recipe["batch"],), generator=gen)
            x0 = seqs[idx]
            maskable = torch.zeros_like(x0, dtype=torch.bool)
            maskable[:, task.prompt_length:] = True
            total = total + training_loss(model, x0, maskable, task.mask_id, gen)
        return total / len(data)

    res = train(net, loss_fn, steps or recipe["steps"], lr=recipe["lr"], warmup=100, ema_decay=0.995,
                progress=progress, desc="tasks")
    return res.ema, res.seconds, res.losses


@torch.no_grad()
def tasks_quality(net, symbols: int = 4, length: int = 4, n: int = 256, seed: int = 123) -> dict:
    """Exact-answer accuracy per task on ``n`` fresh prompts per task, decoded one token per round,
    the most confident masked position first (:func:`~diffkit.discrete.decode`, ``confidence``
    with ``steps = answer_length``, temperature 0)."""
    gen = torch.Generator().manual_seed(seed)
    acc = {}
    for name in TASKS:
        task = get_task(name, symbols, length)
        prompts = task.sample_prompts(n, generator=gen)
        out = decode(net, prompts, task.answer_length, task.mask_id, steps=task.answer_length)
        answers = out.tokens[:, prompts.shape[1]:]
        acc[name] = float(task.score(prompts, answers).mean())
    return {"greedy_accuracy": acc, "eval_prompts_per_task": n}


# ---------------------------------------------------------------------------------------- main
def _size(path: Path) -> int:
    return path.stat().st_size


def main(argv: Optional[list] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(RECIPES), default=None)
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR)
    parser.add_argument("--fast", action="store_true", help="train a few steps only (smoke test)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    results = {}
    names = [args.only] if args.only else list(RECIPES)
    for name in names:
        recipe = RECIPES[name]
        steps = 5 if args.fast else recipe["steps"]
        if name == "hmm-default":
            net, seconds, losses = train_hmm(recipe, steps, progress=not args.no_progress)
            quality = hmm_quality(net, length=3, context=16, n_cond=32) if args.fast else hmm_quality(net)
        else:
            net, seconds, losses = train_tasks(recipe, steps, progress=not args.no_progress)
            quality = tasks_quality(net, recipe["symbols"], recipe["length"], n=16 if args.fast else 256)
        tail = losses[-100:]
        meta = {"recipe": recipe, "steps": steps, "train_seconds": round(seconds, 1),
                "final_loss": sum(tail) / len(tail), "quality": quality, "torch": torch.__version__,
                "command": "python -m diffkit.discrete.train_checkpoints", "threads": torch.get_num_threads()}
        st, _ = save_checkpoint(args.out / name, net, net.config, meta)
        results[name] = {"seconds": seconds, "bytes": _size(st), "quality": quality, "final_loss": meta["final_loss"]}
        print(f"{name}: {seconds:.0f} s, {_size(st) / 1024:.0f} KiB, loss {meta['final_loss']:.4f}, {quality}")
    return results


if __name__ == "__main__":
    main()
