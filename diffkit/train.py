"""One training loop for every model in the kit, with EMA and safetensors checkpoints.

The loop is generic over a *loss closure*: ``loss_fn(model) -> scalar tensor`` draws its own batch
(with its own ``torch.Generator``) and returns the loss to minimise, so the same loop trains a
denoiser with the ELBO / DSM / CFM loss (:mod:`diffkit.losses`) and a masked transformer with the
MDLM loss (:mod:`diffkit.discrete`). The loop adds AdamW, an optional linear warm-up and cosine
decay of the learning rate, gradient clipping, an exponential moving average of the weights
(Polyak averaging; the EMA of DDPM, Ho et al. 2020, App. B) and a tqdm progress bar.

Checkpoints are two files side by side: ``name.safetensors`` (the tensors) and ``name.json`` (the
configuration needed to rebuild the module, any metadata, e.g. measured quality, and the SHA-256
of the tensors file). They are saved atomically as a pair and loaded with safetensors only; a
damaged or mismatched pair raises ``ValueError`` naming the file.

:func:`fit` trains a denoiser with the variational, score or flow loss on top of :func:`train`,
also under ``torchrun`` with ``DistributedDataParallel``.
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

from . import _checks

__all__ = ["MAX_STEPS", "EMA", "TrainResult", "train", "fit", "LOSSES", "LearnedDenoiser", "save_checkpoint", "load_checkpoint",
           "read_checkpoint_info", "lr_at"]

PathLike = Union[str, os.PathLike]

#: the most optimiser steps (and warm-up steps) one :func:`train` call accepts: every step's loss
#: is kept in :attr:`TrainResult.losses`
MAX_STEPS = 10**7


def _check_module(model, name: str = "model") -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module; got {type(model).__name__}")


class EMA:
    """Exponential moving average of a module's parameters: ``avg <- decay * avg + (1 - decay) * p``.

    ``EMA(model, decay).update(model)`` after each optimiser step; ``ema.module`` is a frozen copy
    holding the averaged weights (buffers are copied as they are).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        _check_module(model)
        decay = _checks.real("decay", decay, 0.0, 1.0, high_open=True)
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
    from ``lr`` to ``min_ratio * lr`` at ``steps`` (constant ``lr`` if ``cosine`` is False).
    ``step``, ``steps`` and ``warmup`` are at most :data:`MAX_STEPS`."""
    step = _checks.integer("step", step, 0, MAX_STEPS)
    steps = _checks.integer("steps", steps, 1, MAX_STEPS)
    lr = _checks.real("lr", lr, 0.0, low_open=True)
    warmup = _checks.integer("warmup", warmup, 0, MAX_STEPS)
    cosine = _checks.boolean("cosine", cosine)
    min_ratio = _checks.real("min_ratio", min_ratio, 0.0, 1.0)
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


def _check_steps(steps, name: str = "steps") -> int:
    return _checks.integer(name, steps, 1, MAX_STEPS)


def _check_positive(value, name: str) -> float:
    return _checks.real(name, value, 0.0, low_open=True)


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (or the module itself)."""
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def train(model: nn.Module, loss_fn: Callable[[nn.Module], Tensor], steps: int, *, lr: float = 1e-3,
          weight_decay: float = 0.0, warmup: int = 0, cosine: bool = True, grad_clip: Optional[float] = 1.0,
          ema_decay: Optional[float] = 0.999, progress: bool = True, desc: str = "train",
          log_every: int = 10, callback: Optional[Callable[[int, float], None]] = None) -> TrainResult:
    """Minimise ``loss_fn(model)`` for ``steps`` AdamW steps; returns a :class:`TrainResult`.

    ``loss_fn`` samples its own batch (seed its generator for reproducible runs). ``model`` may be
    wrapped in ``DistributedDataParallel``; the EMA and the returned ``model`` are the inner module. ``callback(step,
    loss)`` is called after every step. The progress bar shows the running loss every ``log_every``
    steps (one host sync per ``log_every`` steps on a GPU).
    """
    _check_module(model)
    if not callable(loss_fn) or isinstance(loss_fn, Tensor):
        raise TypeError(f"loss_fn must be callable (model -> scalar loss); got {type(loss_fn).__name__}")
    steps = _check_steps(steps)
    lr = _check_positive(lr, "lr")
    if grad_clip is not None:
        grad_clip = _check_positive(grad_clip, "grad_clip")
    weight_decay = _checks.real("weight_decay", weight_decay, 0.0)
    warmup = _checks.integer("warmup", warmup, 0, MAX_STEPS)
    log_every = _checks.integer("log_every", log_every, 1, MAX_STEPS)
    if ema_decay is not None:
        ema_decay = _checks.real("ema_decay", ema_decay, 0.0, 1.0, high_open=True)
    inner = _unwrap(model)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    ema = EMA(inner, ema_decay) if ema_decay is not None else None
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
            ema.update(inner)
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
    inner.eval()
    return TrainResult(inner, ema.module if ema is not None else None, losses, time.perf_counter() - start)


# ------------------------------------------------------------------------------------------ fit
#: the loss names of :func:`fit` and the view of :mod:`diffkit.losses` each one weights by
LOSSES = {"elbo": "variational", "dsm": "score", "cfm": "flow"}


def _call_net(net: nn.Module, x: Tensor, t, labels: Optional[Tensor]) -> Tensor:
    """``net(x, t)`` or, for a class-conditional net (one with ``num_classes``), ``net(x, t, labels)``
    (``labels=None`` there means the null label: the unconditional prediction)."""
    if getattr(_unwrap(net), "num_classes", None) is None:
        if labels is not None:
            raise ValueError("labels were given but the network has no num_classes (it is unconditional)")
        return net(x, t)
    return net(x, t, labels)


class LearnedDenoiser:
    """The denoiser ``D(x, t) = E[x0 | x_t = x]`` of a network that predicts ``target`` on ``path``.

    The prediction is turned into ``x0`` by :func:`diffkit.views.as_denoiser`, so any sampler of
    :func:`diffkit.sample` runs it. A class-conditional network (one with a ``num_classes``
    attribute, e.g. :class:`diffkit.nn.UNet`) is called with ``labels``: ``None`` gives the
    unconditional denoiser (the null label), an int or an int tensor ``[batch]`` the conditional
    one; :meth:`with_labels` returns the same network with other labels. ``x`` may have another
    dtype than the network (float64 for exact checks): it is cast to the network's dtype and the
    result back. :func:`fit` and :func:`diffkit.pretrained.load` both return this wrapper.

    ``x0_range=(low, high)`` clips the predicted ``x0`` to the range of the data (the "clipping" of
    DDPM sampling, Ho et al. 2020, and static thresholding, Saharia et al. 2022): near ``t = 1`` an
    ``eps`` or ``score`` prediction is multiplied by ``sigma / alpha`` on its way to ``x0``, and the
    clip keeps that amplified error from leaving the data's range.

    Attributes: ``net``, ``target``, ``path``, ``labels``, ``x0_range``, ``result`` (the
    :class:`TrainResult` of :func:`fit`, or ``None``).
    """

    def __init__(self, net: nn.Module, target: str, path, labels=None, result: Optional[TrainResult] = None,
                 x0_range: Optional[tuple] = None):
        from . import paths as _paths
        from .views import KINDS

        if target not in KINDS:
            raise ValueError(f"target must be one of {', '.join(KINDS)}; got {target!r}")
        self.net, self.target, self.path, self.result = net, target, _paths.get(path), result
        self.num_classes = getattr(net, "num_classes", None)
        self.labels = self._check_labels(labels)
        if x0_range is not None:
            lo, hi = (float(v) for v in x0_range)
            if not lo < hi:
                raise ValueError(f"x0_range must be (low, high) with low < high; got {x0_range!r}")
            x0_range = (lo, hi)
        self.x0_range = x0_range

    def _check_labels(self, labels):
        if labels is None:
            return None
        if self.num_classes is None:
            raise ValueError("labels were given but the network is unconditional (it has no num_classes)")
        labels = torch.as_tensor(labels)
        if labels.dtype not in (torch.int64, torch.int32) or labels.ndim > 1:
            raise ValueError(f"labels must be an int or a 1-D integer tensor; got {labels.dtype} of shape {tuple(labels.shape)}")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes}); got values in "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        return labels.to(torch.int64)

    def with_labels(self, labels) -> "LearnedDenoiser":
        """The same network's denoiser for other ``labels`` (``None``: unconditional)."""
        return LearnedDenoiser(self.net, self.target, self.path, labels, self.result, self.x0_range)

    def _net_fn(self, x: Tensor, t) -> Tensor:
        p = next(self.net.parameters())
        labels = self.labels
        if labels is not None:
            labels = labels.to(p.device)
            if labels.ndim == 0:
                labels = labels.expand(x.shape[0])
            elif labels.shape[0] != x.shape[0]:
                raise ValueError(f"labels has {labels.shape[0]} entries but x has {x.shape[0]} rows")
        t = torch.as_tensor(t)
        out = _call_net(self.net, x.to(device=p.device, dtype=p.dtype), t.to(device=p.device, dtype=p.dtype), labels)
        return out.to(device=x.device, dtype=x.dtype)

    def __call__(self, x: Tensor, t) -> Tensor:
        from .views import as_denoiser

        x0 = as_denoiser(self._net_fn, self.target, self.path)(x, t)
        return x0 if self.x0_range is None else x0.clamp(*self.x0_range)

    def __repr__(self):
        lab = "unconditional" if self.labels is None else f"labels={self.labels.tolist()}"
        return f"LearnedDenoiser({type(self.net).__name__}, target={self.target!r}, {self.path!r}, {lab})"


@dataclass
class _Dist:
    """Where this process stands in a (possibly one-process) run."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")


def _setup_distributed(device: torch.device) -> _Dist:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE`` > 1 in the environment):
    gloo on the CPU, nccl on CUDA (one GPU per process, ``LOCAL_RANK``)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not (dist.is_available() and dist.is_initialized()):
        return _Dist(0, 1, device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), device)


def _check_fit_args(model, data, loss, target, steps, batch_size, lr, labels, label_dropout, ema_decay, autocast):
    from .views import KINDS

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    if target not in KINDS:
        raise ValueError(f"target must be one of {', '.join(KINDS)}; got {target!r}")
    _check_steps(steps)
    _check_steps(batch_size, "batch_size")
    _check_positive(lr, "lr")
    if isinstance(data, Tensor):
        if not data.is_floating_point() or data.ndim < 2 or data.shape[0] < 1:
            raise ValueError(f"data must be a floating-point tensor [N, ...] with N >= 1; got {data.dtype} "
                             f"of shape {tuple(data.shape)}")
        if not bool(torch.isfinite(data).all()):
            raise ValueError("data must be finite (it holds NaN or inf)")
    elif not callable(getattr(data, "sample", None)):
        raise TypeError("data must be a tensor [N, ...] or a law with .sample(n, generator=...) "
                        f"(e.g. an analytic.GaussianMixture); got {type(data).__name__}")
    num_classes = getattr(model, "num_classes", None)
    if labels is not None:
        if num_classes is None:
            raise ValueError("labels need a class-conditional model (one with num_classes, e.g. nn.UNet)")
        if not isinstance(data, Tensor):
            raise ValueError("labels need data given as a tensor (one label per row)")
        if not isinstance(labels, Tensor) or labels.dtype != torch.int64 or labels.shape != (data.shape[0],):
            raise ValueError(f"labels must be an int64 tensor of shape [{data.shape[0]}] (one per row of data)")
        if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
            raise ValueError(f"labels must lie in [0, num_classes={num_classes})")
    if isinstance(label_dropout, bool) or not isinstance(label_dropout, (int, float)) or not 0.0 <= label_dropout <= 1.0:
        raise ValueError(f"label_dropout must be a number in [0, 1]; got {label_dropout!r}")
    if ema_decay is not None and (isinstance(ema_decay, bool) or not isinstance(ema_decay, (int, float))
                                  or not 0.0 <= ema_decay < 1.0):
        raise ValueError(f"ema_decay must be None or a number in [0, 1); got {ema_decay!r}")
    if autocast not in (None, "bf16"):
        raise ValueError(f"autocast must be None or 'bf16'; got {autocast!r}")


def fit(model: nn.Module, data, path, loss: str = "dsm", target: str = "eps", *, steps: int = 2000,
        batch_size: int = 256, lr: float = 1e-3, generator: Optional[torch.Generator] = None,
        labels: Optional[Tensor] = None, label_dropout: float = 0.1, ema_decay: Optional[float] = 0.999,
        device: Union[str, torch.device, None] = None, autocast: Optional[str] = None, progress: bool = True,
        warmup: int = 0, grad_clip: Optional[float] = 1.0, weight_decay: float = 0.0, t_min=None,
        desc: Optional[str] = None, log_every: int = 10,
        callback: Optional[Callable[[int, float], None]] = None) -> LearnedDenoiser:
    """Train ``model`` as a denoiser of ``data`` on ``path`` with one view's loss; return its denoiser.

    ``model(x, t)`` predicts ``target`` (``x0``, ``eps``, ``v``, ``velocity`` or ``score``; turned
    into ``x0`` by :func:`diffkit.views.to_x0`), and ``loss`` picks the view whose weight ``w(t)``
    multiplies the one x0 loss ``E[w(t) ||D(x_t, t) - x0||^2]`` of :func:`diffkit.losses.x0_loss`:

    * ``"elbo"``: the variational bound (DDPM, Ho et al. 2020; VDM, Kingma et al. 2021, eq. 17),
    * ``"dsm"``: denoising score matching (Vincent 2011; Song et al. 2021, eq. 7),
    * ``"cfm"``: conditional flow matching (Lipman et al. 2022, eq. 9).

    ``data`` is a tensor ``[N, ...]`` (each batch draws ``batch_size`` rows with replacement) or a
    law with ``.sample(n, generator=...)`` (fresh samples every step, e.g.
    :func:`diffkit.data.toy_mixture`). ``t ~ U[t_min, 1]`` and the noise are drawn by
    :func:`diffkit.losses.draw`. With ``labels [N]`` (a class-conditional ``model`` with
    ``num_classes``) each label is replaced by the null label with probability ``label_dropout``,
    so that one network learns the conditional and the unconditional denoiser (classifier-free
    guidance, Ho & Salimans 2022, Sec. 3.2).

    The loop is :func:`train` (AdamW, warm-up and cosine decay, gradient clipping, EMA, a tqdm
    progress bar); ``generator`` (default: seed 0) is the only source of randomness, so a rerun
    gives the same weights. ``device`` defaults to the model's; ``autocast="bf16"`` runs the network
    under bfloat16 autocast (CUDA only; the loss is formed in the model's dtype).

    Under ``torchrun --nproc_per_node=N`` the model is wrapped in ``DistributedDataParallel``
    (gloo on the CPU, nccl on CUDA). Every process draws the same global batch from the same
    ``generator`` and trains on its own shard of ``batch_size / N`` rows; the gradients are
    averaged, so the weights after ``k`` steps equal those of one process on the whole batch.

    Returns a :class:`LearnedDenoiser` over the EMA weights (the raw weights if ``ema_decay`` is
    None), with ``.result`` holding the losses and seconds.
    """
    from . import paths as _paths
    from .losses import draw, x0_loss
    from .views import as_denoiser

    _check_fit_args(model, data, loss, target, steps, batch_size, lr, labels, label_dropout, ema_decay, autocast)
    steps, batch_size = _check_steps(steps), _check_steps(batch_size, "batch_size")  # whole floats as ints
    path = _paths.get(path)
    param = next(model.parameters())
    device = torch.device(device) if device is not None else param.device
    if autocast == "bf16" and device.type != "cuda":
        raise ValueError(f"autocast='bf16' needs a CUDA device; got device {device}")
    ctx = _setup_distributed(device)
    device = ctx.device
    if batch_size % ctx.world:
        raise ValueError(f"batch_size={batch_size} must be divisible by the number of processes ({ctx.world})")
    model = model.to(device)
    dtype = param.dtype
    net: nn.Module = model
    if ctx.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    gdev = gen.device
    num_classes = getattr(model, "num_classes", None)
    if isinstance(data, Tensor):
        data = data.to(device=gdev, dtype=dtype)
        labels = labels.to(gdev) if labels is not None else None
    view = LOSSES[loss]
    shard = slice(ctx.rank * batch_size // ctx.world, (ctx.rank + 1) * batch_size // ctx.world)

    def global_batch():
        if isinstance(data, Tensor):
            idx = torch.randint(data.shape[0], (batch_size,), generator=gen, device=gdev)
            x0, y = data[idx], (labels[idx] if labels is not None else None)
        else:
            x0, y = data.sample(batch_size, generator=gen).to(device=gdev, dtype=dtype), None
        if num_classes is not None:
            y = torch.full((batch_size,), num_classes, device=gdev) if y is None else y
            drop = torch.rand(batch_size, generator=gen, device=gdev) < label_dropout
            y = torch.where(drop, torch.full_like(y, num_classes), y)
        t, eps, _ = draw(x0, path, gen, t_min)
        return x0, y, t, eps

    def loss_fn(m):
        x0, y, t, eps = (v[shard].to(device) if v is not None else None for v in global_batch())

        def net_fn(x, tt):
            if autocast == "bf16":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    return _call_net(m, x, tt, y).to(dtype)
            return _call_net(m, x, tt, y)

        return x0_loss(as_denoiser(net_fn, target, path), x0, path, view, t=t, eps=eps)

    res = train(net, loss_fn, steps, lr=lr, weight_decay=weight_decay, warmup=warmup, grad_clip=grad_clip,
                ema_decay=ema_decay, progress=progress and ctx.rank == 0, desc=desc or f"fit {loss}/{target}",
                log_every=log_every, callback=callback)
    trained = res.ema if res.ema is not None else res.model
    return LearnedDenoiser(trained, target, path, result=res)


# ---------------------------------------------------------------------------------- checkpoints
# A checkpoint is a pair ``name.safetensors`` + ``name.json``; the json records the SHA-256 of the
# tensors file, so a pair whose halves come from different saves is recognised. A save writes
# both files to temporary names in the same directory and renames them into place (a rename
# within a directory is atomic on POSIX and Windows); the old tensors are kept as a hard link
# ``.name.safetensors.prev`` across the one moment when the new tensors sit beside the old json,
# so a save killed at any point leaves a pair that loads: the old one, or the new one.
_TEMP_SUFFIX = ".tmp"


def _stem(path: PathLike) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike naming a checkpoint; got {type(path).__name__}")
    if not str(os.fspath(path)).strip():
        raise ValueError(f"path must name a checkpoint file; got {path!r}")
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".safetensors", ".json") else p


def _files(stem: Path) -> tuple[Path, Path, Path]:
    """The tensors file, the json and the backup of the previous tensors of a checkpoint."""
    return (stem.with_suffix(".safetensors"), stem.with_suffix(".json"),
            stem.parent / f".{stem.name}.safetensors.prev")


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _write_temp(stem: Path, kind: str, data: bytes) -> Path:
    """Write ``data`` to a fresh temporary file beside the checkpoint, flushed to disk."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{stem.name}.{kind}.", suffix=_TEMP_SUFFIX, dir=stem.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # the permissions of a file made by open(), not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not possible on some platforms (Windows): renames are still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _recorded_hash(js: Path) -> Optional[str]:
    try:
        info = json.loads(js.read_text())
        return info.get("sha256") if isinstance(info, dict) else None
    except (OSError, ValueError):
        return None


def _recover(stem: Path) -> None:
    """Finish or roll back a save that was killed: if the tensors do not match the json but the
    kept previous tensors do, put those back; then drop the backup and stale temporary files."""
    st, js, prev = _files(stem)
    if prev.exists():
        want = _recorded_hash(js)
        if want is not None and (not st.exists() or _sha256(st.read_bytes()) != want) \
                and _sha256(prev.read_bytes()) == want:
            os.replace(prev, st)
        prev.unlink(missing_ok=True)
    for kind in ("safetensors", "json"):
        for tmp in stem.parent.glob(f".{stem.name}.{kind}.*{_TEMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)


def _keep_previous(st: Path, prev: Path) -> None:
    import shutil

    prev.unlink(missing_ok=True)
    try:
        os.link(st, prev)
    except OSError:  # file systems without hard links
        shutil.copy2(st, prev)


def save_checkpoint(path: PathLike, model: nn.Module, config: dict, metadata: Optional[dict] = None) -> tuple[Path, Path]:
    """Write ``path.safetensors`` (the module's state dict, contiguous, on the CPU) and ``path.json``
    (``{"config": config, "metadata": metadata, "sha256": <hash of the tensors file>}``),
    atomically as a pair (see the comment above). Returns both paths.

    Refuses (``ValueError``) a config that is not a JSON object and weights that are not finite.
    One writer per checkpoint at a time; stale temporary files of a killed save are removed.
    """
    from safetensors.torch import save as to_bytes

    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict (a JSON object); got {type(config).__name__}")
    stem = _stem(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"refusing to save non-finite weights (NaN or inf) in {', '.join(bad)}")
    blob = to_bytes(tensors)
    try:
        text = json.dumps({"config": config, "metadata": metadata or {}, "sha256": _sha256(blob)},
                          indent=2, sort_keys=True, allow_nan=False) + "\n"
    except (TypeError, ValueError) as e:
        raise ValueError(f"config and metadata must be JSON-serialisable (finite numbers): {e}") from None
    st, js, prev = _files(stem)
    _recover(stem)
    tmp_st = _write_temp(stem, "safetensors", blob)
    tmp_js = _write_temp(stem, "json", text.encode())
    if st.exists():
        _keep_previous(st, prev)
    os.replace(tmp_st, st)   # from here until the next line, the old json pairs with prev
    os.replace(tmp_js, js)
    _fsync_dir(stem.parent)
    prev.unlink(missing_ok=True)
    return st, js


def _bad(file: Path, what: str) -> ValueError:
    return ValueError(f"checkpoint {file}: {what}")


def read_checkpoint_info(path: PathLike) -> dict:
    """The validated json of a checkpoint: a JSON object with a ``config`` object, an optional
    ``metadata`` object and the ``sha256`` of the tensors file. ``ValueError`` names the file and
    what is wrong."""
    js = _files(_stem(path))[1]
    if not js.exists():
        raise FileNotFoundError(f"checkpoint json {js} does not exist")
    try:
        info = json.loads(js.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise _bad(js, f"not valid JSON ({e})") from None
    if not isinstance(info, dict):
        raise _bad(js, f"must hold a JSON object, got {type(info).__name__}")
    if not isinstance(info.get("config"), dict):
        raise _bad(js, "has no 'config' object")
    if not isinstance(info.get("metadata", {}), dict):
        raise _bad(js, "'metadata' must be an object")
    sha = info.get("sha256")
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise _bad(js, "has no 'sha256' of its tensors file (a 64-digit hex string); save it with "
                       "diffkit.train.save_checkpoint")
    info.setdefault("metadata", {})
    return info


def _read_tensors(stem: Path, sha: str) -> tuple[dict, Path]:
    """The tensors whose file hashes to ``sha``: the checkpoint's, or the kept previous ones when a
    save was killed between its two renames."""
    from safetensors.torch import load as from_bytes

    st, js, prev = _files(stem)
    if not st.exists():
        raise FileNotFoundError(f"checkpoint tensors {st} do not exist")
    blob = st.read_bytes()
    used = st
    if _sha256(blob) != sha:
        if prev.exists() and _sha256(prev.read_bytes()) == sha:
            blob, used = prev.read_bytes(), prev
        else:
            raise _bad(st, f"its SHA-256 does not match the one recorded in {js.name} (the file was "
                           "changed, truncated or replaced, or belongs to another save)")
    try:
        state = from_bytes(blob)
    except Exception as e:  # safetensors raises its own error types for bad headers and sizes
        raise _bad(used, f"not a valid safetensors file ({type(e).__name__}: {e})") from None
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise _bad(used, f"non-finite weights (NaN or inf) in {', '.join(bad)}")
    return state, used


def load_checkpoint(path: PathLike, build: Optional[Callable[[dict], nn.Module]] = None,
                    device: Union[str, torch.device, None] = None) -> tuple:
    """Read a checkpoint written by :func:`save_checkpoint` (safetensors only: nothing is unpickled).

    With ``build`` (``config -> module``) returns ``(module, info)`` with the weights loaded (strict)
    and the module in eval mode; without it returns ``(state_dict, info)``. ``info`` is the json.
    A missing file raises ``FileNotFoundError``; a json that is not a checkpoint's, a tensors file
    that is truncated, corrupted, not safetensors or not the one the json's hash names, non-finite
    weights, or a config that does not build a module fitting the tensors raise ``ValueError``
    naming the file and what is wrong.
    """
    stem = _stem(path)
    st, js, _ = _files(stem)
    if not st.exists() or not js.exists():
        raise FileNotFoundError(f"checkpoint needs both {st} and {js}")
    info = read_checkpoint_info(stem)
    state, used = _read_tensors(stem, info["sha256"])
    if device is not None:
        state = {k: v.to(device) for k, v in state.items()}
    if build is None:
        return state, info
    try:
        module = build(info["config"])
    except (TypeError, ValueError, KeyError) as e:
        raise _bad(js, f"its config does not build a module ({type(e).__name__}: {e})") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise _bad(used, f"the tensors do not fit the module built from {js.name}'s config "
                         f"({' '.join(s.strip() for s in first[:4])})") from None
    if device is not None:
        module = module.to(device)
    return module.eval(), info
