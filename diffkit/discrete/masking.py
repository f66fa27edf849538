"""Masked (absorbing-state) diffusion: forward masking, the continuous-time ELBO, ancestral sampling.

Forward process (Austin et al. 2021, D3PM absorbing state; Sahoo et al. 2024, MDLM; Shi et al.
2024, MD4): each token of ``x_0`` is independently kept with probability ``alpha(t)`` and replaced
by the mask otherwise,

    q(x_t^i | x_0^i) = alpha(t) [x_t^i = x_0^i] + (1 - alpha(t)) [x_t^i = mask],

with ``alpha(0) = 1`` (data) and ``alpha(1) = 0`` (all masked), the kit's time convention.
Schedules (``SCHEDULES``): ``linear`` ``alpha = 1 - t`` (MDLM's log-linear noise, LLaDA) and
``cosine`` ``alpha = 1 - cos(pi/2 (1 - t))`` (MD4, Table 1).

Training loss: the continuous-time negative ELBO (MDLM, Sahoo et al. 2024, eq. 10; MD4 eq. 5)

    NELBO(x_0) = int_0^1  -alpha'(t) / (1 - alpha(t))  E_{x_t} [ sum_{i masked} -log p(x_0^i | x_t) ] dt,

an upper bound on ``-log p(x_0)``. Substituting ``u = alpha(t)`` shows it does not depend on the
schedule: with ``L`` tokens, ``NELBO = sum_{m=1}^{L} E_{|M| = m} [(1/m) sum_{i in M} -log p(x_0^i |
x_0 outside M)]`` (:func:`exact_nelbo`), the average over random orders of the any-order
autoregressive loss (Ou et al. 2024; Hoogeboom et al. 2022, ARDM). With exact conditionals, e.g.
an :class:`~diffkit.discrete.HMMLanguage` oracle, every order gives ``-log p(x_0)``: the bound is
tight.

Sampling: ancestral sampling of the reverse process (MDLM Sec. 3.2.2): from ``t`` to ``s < t``,
each masked token is revealed with probability ``(alpha(s) - alpha(t)) / (1 - alpha(t))`` and drawn
from the model's ``p(x_0^i | x_t)``; a step where nothing changes reuses the previous logits (no new
model call, as MDLM's caching).

Vocabulary convention as in :mod:`diffkit.discrete.hmm` (``mask_id``; the model never predicts it).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch
from torch import Tensor

from .. import _checks

__all__ = ["SCHEDULES", "MaskSchedule", "get_schedule", "mask_tokens", "nelbo_weight",
           "mdlm_loss", "exact_nelbo", "ancestral_sample", "SampleOutput"]

SCHEDULES = ("linear", "cosine")
#: the most tokens :func:`ancestral_sample` generates after the prompt, and its most steps
MAX_LENGTH = 1 << 20
MAX_STEPS = 1 << 16


@dataclass(frozen=True)
class MaskSchedule:
    """``alpha(t)``: the probability that a token is still unmasked at time ``t`` in ``[0, 1]``,
    and its derivative ``dalpha(t)``. ``t`` a float or a tensor; float64 for floats."""

    name: str

    def alpha(self, t) -> Tensor:
        t = _t(t)
        if self.name == "linear":
            return 1.0 - t
        return 1.0 - torch.cos(0.5 * math.pi * (1.0 - t))

    def dalpha(self, t) -> Tensor:
        t = _t(t)
        if self.name == "linear":
            return -torch.ones_like(t)
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * (1.0 - t))


def _t(t) -> Tensor:
    if isinstance(t, Tensor):
        return t if t.is_floating_point() else t.to(torch.float64)
    return torch.as_tensor(float(t), dtype=torch.float64)


def _time(name: str, t, low_open: bool = False, batch: Optional[int] = None) -> Tensor:
    """A time argument checked at a public entry point: a real number or a real tensor (``[batch]``
    when ``batch`` is given), finite, in ``[0, 1]`` (``(0, 1]`` when ``low_open``)."""
    if not isinstance(t, Tensor):
        t = torch.tensor(_checks.real(name, t, 0.0, 1.0, low_open=low_open), dtype=torch.float64)
    t = _checks.tensor(name, t, floating=True) if t.is_floating_point() else _checks.tensor(name, t)
    if batch is not None and t.dim() > 0 and tuple(t.shape) != (batch,):
        raise ValueError(f"{name} must be a number or a [batch] = [{batch}] tensor; got shape {tuple(t.shape)}")
    if t.numel() and (bool((t < 0).any()) or bool((t > 1).any()) or (low_open and bool((t == 0).any()))):
        raise ValueError(f"{name} must lie in {'(0' if low_open else '[0'}, 1]; got values in "
                         f"[{float(t.min()):g}, {float(t.max()):g}]")
    return t if t.is_floating_point() else t.to(torch.float64)


def _tokens(name: str, x, dims=(2,)) -> Tensor:
    """Token ids: an integer tensor (a list is converted) with ``dims`` dimensions, entries >= 0."""
    x = _checks.tensor(name, x, convert=True, floating=False, dim=dims)
    if x.numel() and bool((x < 0).any()):
        raise ValueError(f"{name} token ids must be >= 0; got {int(x.min())}")
    return x


def _callable(name: str, fn) -> None:
    if not callable(fn) or isinstance(fn, Tensor):
        raise TypeError(f"{name} must be callable (token ids -> logits); got {type(fn).__name__}")


def get_schedule(name: Union[str, MaskSchedule]) -> MaskSchedule:
    """A masking schedule by name (one of ``SCHEDULES``)."""
    if isinstance(name, MaskSchedule):
        return name
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {SCHEDULES}")
    return MaskSchedule(name)


def nelbo_weight(t, schedule="linear") -> Tensor:
    """The NELBO's weight ``-alpha'(t) / (1 - alpha(t))`` (MDLM eq. 10): ``1/t`` for ``linear``."""
    s = get_schedule(schedule)
    t = _time("t", t, low_open=True)  # the weight is infinite at t = 0
    return -s.dalpha(t) / (1.0 - s.alpha(t))


def mask_tokens(x0: Tensor, t, mask_id: int, schedule="linear",
                generator: Optional[torch.Generator] = None, keep: Optional[Tensor] = None) -> Tensor:
    """Sample ``x_t ~ q(x_t | x_0)``: each token kept with probability ``alpha(t)``, else
    ``mask_id``. ``x0 [batch, L]``; ``t`` a float or ``[batch]``; ``keep [batch, L]`` or ``[L]``
    bool marks positions never masked (a prompt)."""
    x0 = _tokens("x0", x0, dims=(1, 2))
    mask_id = _checks.integer("mask_id", mask_id, 0)
    t = _time("t", t, batch=x0.shape[0] if x0.dim() == 2 else None)
    alpha = get_schedule(schedule).alpha(t).to(torch.float64)
    if alpha.dim() == 1:
        alpha = alpha.unsqueeze(1)
    u = torch.rand(x0.shape, generator=generator, dtype=torch.float64, device=x0.device)
    masked = u >= alpha.to(x0.device)
    if keep is not None:
        masked = masked & ~keep.to(x0.device)
    return torch.where(masked, torch.full_like(x0, mask_id), x0)


def _nll(model: Callable, xt: Tensor, x0: Tensor, mask_id: int) -> Tensor:
    """``-log p(x_0^i | x_t)`` ``[batch, L]`` from the model's logits (0 at unmasked positions)."""
    logits = model(xt)
    if logits.dim() != 3 or logits.shape[:2] != xt.shape:
        raise ValueError(f"model must return logits [batch, L, V], got {tuple(logits.shape)}")
    if x0.numel() and int(x0.max()) >= logits.shape[-1]:
        raise ValueError(f"x0 token ids must be < the model's vocabulary ({logits.shape[-1]}); got {int(x0.max())}")
    logp = torch.log_softmax(logits.to(torch.float64) if x0.device.type == "cpu" else logits, -1)
    nll = -logp.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
    return torch.where(xt == mask_id, nll, torch.zeros_like(nll))


def mdlm_loss(model: Callable, x0: Tensor, mask_id: int, schedule="linear", t: Optional[Tensor] = None,
              generator: Optional[torch.Generator] = None, keep: Optional[Tensor] = None,
              t_min: float = 1e-4, reduction: str = "mean") -> Tensor:
    """Monte-Carlo estimate of the continuous-time masked-diffusion NELBO (MDLM eq. 10), in nats per
    sequence: ``t ~ U(t_min, 1)`` per row (or the given ``[batch]`` t), ``x_t`` by
    :func:`mask_tokens`, loss ``w(t) sum_{masked i} -log p(x_0^i | x_t)``. ``reduction``:
    ``"mean"`` (a scalar, the training loss), ``"none"`` (``[batch]``). Its expectation upper-bounds
    ``-log p(x_0)`` (for ``t_min -> 0``); divide by the length for nats per token."""
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    _callable("model", model)
    x0 = _tokens("x0", x0)
    mask_id = _checks.integer("mask_id", mask_id, 0)
    if bool((x0 == mask_id).any()):
        raise ValueError(f"x0 must be clean data: it contains mask_id={mask_id}")
    vocab = getattr(model, "vocab_size", None)
    if isinstance(vocab, int) and x0.numel() and int(x0.max()) >= vocab:
        raise ValueError(f"x0 token ids must be < the model's vocab_size {vocab}; got {int(x0.max())}")
    t_min = _checks.real("t_min", t_min, 0.0, 1.0)
    batch = x0.shape[0]
    if t is not None:
        t = _time("t", t, low_open=True, batch=batch)
    else:
        t = t_min + (1 - t_min) * torch.rand(batch, generator=generator, dtype=torch.float64)
    t = _t(t).reshape(-1).expand(batch) if _t(t).dim() == 0 else _t(t)
    xt = mask_tokens(x0, t, mask_id, schedule, generator, keep)
    w = nelbo_weight(t, schedule).to(x0.device)
    nll = _nll(model, xt, x0, mask_id)
    loss = w.to(nll.dtype) * nll.sum(-1)
    return loss.mean() if reduction == "mean" else loss


def exact_nelbo(model: Callable, x0: Tensor, mask_id: int) -> Tensor:
    """The exact NELBO ``[batch]`` (nats) for short sequences, by summing over every mask pattern:
    ``sum_M (L - |M|)! (|M| - 1)! / L!  sum_{i in M} -log p(x_0^i | x_0 outside M)``, the
    closed form of MDLM's time integral (the same for every schedule; see the module docstring).
    ``2 ** L`` model calls' worth of rows: keep ``L`` small."""
    x0 = torch.as_tensor(x0).long()
    if x0.dim() == 1:
        x0 = x0.unsqueeze(0)
    batch, length = x0.shape
    patterns = torch.tensor(list(itertools.product([False, True], repeat=length)), dtype=torch.bool)[1:]
    m = patterns.sum(1)
    coef = torch.tensor([math.factorial(length - k) * math.factorial(k - 1) / math.factorial(length)
                         for k in m.tolist()], dtype=torch.float64)
    out = torch.zeros(batch, dtype=torch.float64)
    for b in range(batch):
        xs = x0[b].expand(patterns.shape[0], -1)
        xt = torch.where(patterns, torch.full_like(xs, mask_id), xs)
        nll = _nll(model, xt, xs, mask_id).to(torch.float64).sum(-1)
        out[b] = (coef * nll).sum()
    return out


@dataclass
class SampleOutput:
    """``tokens [batch, prompt_len + length]`` and ``nfe`` (model calls)."""

    tokens: Tensor
    nfe: int


def ancestral_sample(model: Callable, prompt: Tensor, length: int, mask_id: int, steps: int = 64,
                     schedule="linear", temperature: float = 1.0,
                     generator: Optional[torch.Generator] = None) -> SampleOutput:
    """Ancestral sampling of the masked-diffusion reverse process on the uniform time grid
    ``1 = t_0 > ... > t_steps = 0`` (MDLM Sec. 3.2.2): at each step every masked token is revealed
    with probability ``(alpha(s) - alpha(t)) / (1 - alpha(t))``, its token drawn from
    ``softmax(logits / temperature)`` (mask excluded); logits are reused while nothing changes.
    ``prompt [batch, P]`` (``P`` may be 0) stays fixed."""
    _callable("model", model)
    length = _checks.integer("length", length, 0, MAX_LENGTH)
    steps = _checks.integer("steps", steps, 1, MAX_STEPS)
    mask_id = _checks.integer("mask_id", mask_id, 0)
    temperature = _checks.real("temperature", temperature, 0.0, low_open=True)
    prompt = _tokens("prompt", prompt, dims=(1, 2)).long()
    if prompt.dim() == 1:
        prompt = prompt.unsqueeze(0)
    if (prompt == mask_id).any():
        raise ValueError("prompt contains mask_id")
    vocab = getattr(model, "vocab_size", None)
    if isinstance(vocab, int) and prompt.numel() and int(prompt.max()) >= vocab:
        raise ValueError(f"prompt token ids must be < the model's vocab_size {vocab}; got {int(prompt.max())}")
    sched = get_schedule(schedule)
    batch = prompt.shape[0]
    x = torch.cat([prompt, torch.full((batch, length), mask_id, dtype=torch.long, device=prompt.device)], 1)
    grid = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    nfe = 0
    for k in range(steps):
        masked = x == mask_id
        if not masked.any():
            break
        a_t, a_s = float(sched.alpha(grid[k])), float(sched.alpha(grid[k + 1]))
        p_reveal = 1.0 if k == steps - 1 else (a_s - a_t) / (1.0 - a_t)
        reveal = masked & (torch.rand(x.shape, generator=generator, dtype=torch.float64) < p_reveal)
        if not reveal.any():
            continue  # nothing changes: no model call (the logits would be the same)
        logits = model(x).to(torch.float64)
        nfe += 1
        z = logits[reveal] / temperature
        if 0 <= mask_id < z.shape[-1]:
            z[..., mask_id] = -math.inf
        u = torch.rand(z.shape, generator=generator, dtype=torch.float64).clamp_min(1e-300)
        x = x.clone()
        x[reveal] = (z - torch.log(-torch.log(u))).argmax(-1)  # Gumbel-max draw
    return SampleOutput(x, nfe)
