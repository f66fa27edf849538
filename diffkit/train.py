"""One training loop for every model in the kit, with EMA and safetensors checkpoints.

The loop is generic over a *loss closure*: ``loss_fn(model) -> scalar tensor`` draws its own batch
(with its own ``torch.Generator``) and returns the loss to minimise, so the same loop trains a
denoiser with the ELBO / DSM / CFM loss (:mod:`diffkit.losses`) and a masked transformer with the
MDLM loss (:mod:`diffkit.discrete`). The loop adds AdamW, an optional linear warm-up and cosine
decay of the learning rate, gradient clipping, an exponential moving average of the weights
(Polyak averaging; the EMA of DDPM, Ho et al. 2020, App. B) and a tqdm progress bar.

Checkpoints are two files side by side: ``name.safetensors`` (the tensors) and ``name.json`` (the
configuration needed to rebuild the module plus any metadata, e.g. measured quality).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import torch
from torch import Tensor, nn

__all__ = ["EMA", "TrainResult", "train", "save_checkpoint", "load_checkpoint", "lr_at"]

PathLike = Union[str, os.PathLike]


class EMA:
    """Exponential moving average of a module's parameters: ``avg <- decay * avg + (1 - decay) * p``.

    ``EMA(model, decay).update(model)`` after each optimiser step; ``ema.module`` is a frozen copy
    holding the averaged weights (buffers are copied as they are).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for avg, p in zip(self.module.parameters(), model.parameters()):
            avg.lerp_(p.detach(), 1.0 - self.decay)
        for avg, b in zip(self.module.buffers(), model.buffers()):
            avg.copy_(b)


def lr_at(step: int, steps: int, lr: float, warmup: int = 0, cosine: bool = True, min_ratio: float = 0.1) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up over ``warmup`` steps, then cosine decay
    from ``lr`` to ``min_ratio * lr`` at ``steps`` (constant ``lr`` if ``cosine`` is False)."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    if not cosine:
        return lr
    frac = min(max(step - warmup, 0) / max(steps - warmup, 1), 1.0)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained ``model``, its ``ema`` copy (or ``None``), the loss
    of every step, and the wall-clock seconds spent."""

    model: nn.Module
    ema: Optional[nn.Module]
    losses: list = field(default_factory=list)
    seconds: float = 0.0


def train(model: nn.Module, loss_fn: Callable[[nn.Module], Tensor], steps: int, *, lr: float = 1e-3,
          weight_decay: float = 0.0, warmup: int = 0, cosine: bool = True, grad_clip: Optional[float] = 1.0,
          ema_decay: Optional[float] = 0.999, progress: bool = True, desc: str = "train",
          log_every: int = 10, callback: Optional[Callable[[int, float], None]] = None) -> TrainResult:
    """Minimise ``loss_fn(model)`` for ``steps`` AdamW steps; returns a :class:`TrainResult`.

    ``loss_fn`` samples its own batch (seed its generator for reproducible runs). ``callback(step,
    loss)`` is called after every step. The progress bar shows the running loss every ``log_every``
    steps (one host sync per ``log_every`` steps on a GPU).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    ema = EMA(model, ema_decay) if ema_decay is not None else None
    losses: list[float] = []
    model.train()
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=desc, leave=False)
    pending: list[Tensor] = []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr, warmup, cosine)
        loss = loss_fn(model)
        if loss.ndim != 0:
            raise ValueError(f"loss_fn must return a scalar tensor, got shape {tuple(loss.shape)}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        if ema is not None:
            ema.update(model)
        pending.append(loss.detach())
        if len(pending) == log_every or step == steps - 1:
            vals = torch.stack(pending).tolist()
            losses.extend(vals)
            pending = []
            if bar is not None:
                bar.set_postfix(loss=f"{sum(vals) / len(vals):.4f}")
                bar.update(len(vals))
        if callback is not None:
            callback(step, float(loss.detach()))
    if bar is not None:
        bar.close()
    model.eval()
    return TrainResult(model, ema.module if ema is not None else None, losses, time.perf_counter() - start)


def _stem(path: PathLike) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".safetensors", ".json") else p


def save_checkpoint(path: PathLike, model: nn.Module, config: dict, metadata: Optional[dict] = None) -> tuple[Path, Path]:
    """Write ``path.safetensors`` (the module's state dict, contiguous, on the CPU) and ``path.json``
    (``{"config": config, "metadata": metadata}``). Returns both paths."""
    from safetensors.torch import save_file

    stem = _stem(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    st, js = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    save_file(tensors, str(st))
    js.write_text(json.dumps({"config": config, "metadata": metadata or {}}, indent=2, sort_keys=True) + "\n")
    return st, js


def load_checkpoint(path: PathLike, build: Optional[Callable[[dict], nn.Module]] = None,
                    device: Union[str, torch.device, None] = None) -> tuple:
    """Read a checkpoint written by :func:`save_checkpoint`.

    With ``build`` (``config -> module``) returns ``(module, info)`` with the weights loaded (strict)
    and the module in eval mode; without it returns ``(state_dict, info)``. ``info`` is the json.
    """
    from safetensors.torch import load_file

    stem = _stem(path)
    st, js = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    if not st.exists() or not js.exists():
        raise FileNotFoundError(f"checkpoint needs both {st} and {js}")
    info = json.loads(js.read_text())
    state = load_file(str(st), device=str(device) if device is not None else "cpu")
    if build is None:
        return state, info
    module = build(info["config"])
    module.load_state_dict(state, strict=True)
    if device is not None:
        module = module.to(device)
    return module.eval(), info
