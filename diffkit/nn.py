"""Small networks for the course: a time-conditioned MLP and a tiny masked-diffusion transformer.

- :class:`TimeMLP` is the denoiser network of the 2-D lessons: ``net(x, t)`` with ``x`` of shape
  ``[batch, d]`` and ``t`` a 0-dim or ``[batch]`` tensor in ``[0, 1]``, embedded with sinusoidal
  features (Vaswani et al. 2017, Sec. 3.5; the time embedding of Ho et al. 2020, DDPM).
- :class:`MaskedTransformer` is a bidirectional (encoder-only) transformer over token ids, the
  network of masked diffusion language models (MDLM, Sahoo et al. 2024; LLaDA, Nie et al. 2025):
  ``logits = net(tokens)`` with shapes ``[batch, L] -> [batch, L, vocab]``. It takes no time input:
  for absorbing-state diffusion the clean-data posterior does not depend on ``t`` given the masked
  sequence (MDLM, Sec. 3.2; Ou et al. 2024, "Your absorbing discrete diffusion secretly models the
  conditional distributions of clean data"). Attention keys and values are produced per layer
  through an optional hook, so that :mod:`diffkit.discrete.cache` can cache and reuse them.

Both follow the dtype and device of their parameters; call ``.to(dtype)`` for float64 checks.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["sinusoidal_embedding", "TimeMLP", "MaskedTransformer", "TransformerBlock", "KVHook"]

#: ``hook(layer, k, v) -> (k_all, v_all)``: receives the fresh keys and values of the queried
#: positions of one layer (``[batch, heads, S, head_dim]``) and returns the keys and values that
#: those queries attend to (fresh ones merged with cached ones, ``[batch, heads, L, head_dim]``).
KVHook = Callable[[int, Tensor, Tensor], "tuple[Tensor, Tensor]"]


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10_000.0, scale: float = 1000.0) -> Tensor:
    """Sinusoidal features of a time ``t`` in ``[0, 1]`` (Vaswani et al. 2017, Sec. 3.5).

    ``t`` (0-dim or ``[batch]``) is multiplied by ``scale`` (DDPM's integer time range) and mapped to
    ``[cos(t w_k), sin(t w_k)]`` with frequencies ``w_k = max_period ** (-k / (dim/2))``.
    Returns ``[batch, dim]`` (``[1, dim]`` for a 0-dim ``t``) in the dtype of ``t``.
    """
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    t = torch.as_tensor(t)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    t = t.reshape(-1)
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=t.dtype, device=t.device) / half)
    args = (scale * t)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimeMLP(nn.Module):
    """MLP denoiser network ``net(x, t)`` for low-dimensional data.

    Input ``x`` is ``[batch, dim]`` and ``t`` a python float, a 0-dim or a ``[batch]`` tensor.
    ``t`` is embedded with :func:`sinusoidal_embedding` (``time_dim`` features), passed through a
    small MLP and concatenated with ``x``; ``depth`` hidden layers of width ``hidden`` with SiLU
    follow; the output has shape ``[batch, dim]`` (whatever the net predicts: x0, eps, v, ...).
    """

    def __init__(self, dim: int, hidden: int = 128, depth: int = 3, time_dim: int = 32):
        super().__init__()
        if dim < 1 or hidden < 1 or depth < 1 or time_dim < 2:
            raise ValueError(f"dim, hidden, depth must be >= 1 and time_dim >= 2, got {dim}, {hidden}, {depth}, {time_dim}")
        self.dim, self.hidden, self.depth, self.time_dim = dim, hidden, depth, time_dim + (time_dim % 2)
        self.time_mlp = nn.Sequential(nn.Linear(self.time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        layers: list[nn.Module] = [nn.Linear(dim + hidden, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    @property
    def config(self) -> dict:
        return {"dim": self.dim, "hidden": self.hidden, "depth": self.depth, "time_dim": self.time_dim}

    def forward(self, x: Tensor, t) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape [batch, {self.dim}], got {tuple(x.shape)}")
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.ndim > 1 or (t.ndim == 1 and t.shape[0] not in (1, x.shape[0])):
            raise ValueError(f"t must be 0-dim or [batch]={x.shape[0]}, got shape {tuple(t.shape)}")
        emb = self.time_mlp(sinusoidal_embedding(t, self.time_dim).to(x.dtype))
        emb = emb.expand(x.shape[0], -1)
        return self.net(torch.cat([x, emb], dim=-1))


class TransformerBlock(nn.Module):
    """Pre-LayerNorm transformer block with full (bidirectional) self-attention."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def qkv_heads(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys, values of hidden states ``h [batch, S, dim]``, each ``[batch, heads, S, head_dim]``."""
        b, s, d = h.shape
        q, k, v = self.qkv(self.ln1(h)).view(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return q, k, v

    def forward(self, h: Tensor, layer: int = 0, kv_hook: Optional[KVHook] = None) -> Tensor:
        b, s, d = h.shape
        q, k, v = self.qkv_heads(h)
        if kv_hook is not None:
            k, v = kv_hook(layer, k, v)
        a = F.scaled_dot_product_attention(q, k, v)
        h = h + self.proj(a.transpose(1, 2).reshape(b, s, d))
        return h + self.mlp(self.ln2(h))


class MaskedTransformer(nn.Module):
    """Tiny bidirectional transformer for masked diffusion: ``logits = net(tokens)``.

    ``tokens [batch, L]`` (``L <= max_len``) -> ``logits [batch, L, vocab_size]``. Token and learned
    position embeddings, ``depth`` pre-LN blocks with full self-attention (no causal mask), a final
    LayerNorm and a linear head. When ``mask_id`` is given, the logit of the mask token is ``-inf``
    so the model never predicts it (MDLM's "zero masking probabilities", Sec. 3.2.1; the same
    convention as the oracle's :class:`diffkit.discrete.hmm.OracleModel`: real tokens ``0..V-1``,
    ``mask_id = V``, ``vocab_size = V + 1``).

    Caching: :meth:`forward` takes ``positions`` and ``kv_hook``. With ``positions [S]`` or
    ``[batch, S]`` the ``tokens`` are only the queried positions of a longer sequence; the hook
    supplies, per layer, the keys and values of the whole sequence (fresh ones for the queried
    positions, cached ones elsewhere). Attention has no causal mask and positions enter only
    through the input embedding, so keys may come in any order.
    """

    def __init__(self, vocab_size: int, max_len: int, dim: int = 64, depth: int = 2, heads: int = 4,
                 mlp_ratio: int = 4, mask_id: Optional[int] = None):
        super().__init__()
        if vocab_size < 2 or max_len < 1 or depth < 1:
            raise ValueError(f"need vocab_size >= 2, max_len >= 1, depth >= 1; got {vocab_size}, {max_len}, {depth}")
        if mask_id is not None and not 0 <= mask_id < vocab_size:
            raise ValueError(f"mask_id must be in [0, vocab_size={vocab_size}), got {mask_id}")
        self.vocab_size, self.max_len, self.dim, self.depth = vocab_size, max_len, dim, depth
        self.heads, self.mlp_ratio, self.mask_id = heads, mlp_ratio, mask_id
        self.tok_emb = nn.Embedding(vocab_size, dim)
        self.pos_emb = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)
        never = torch.zeros(vocab_size, dtype=torch.bool)
        if mask_id is not None:
            never[mask_id] = True
        self.register_buffer("never_predicted", never, persistent=False)  # moves with .to(device)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    @property
    def config(self) -> dict:
        """Constructor arguments; ``MaskedTransformer(**net.config)`` rebuilds the architecture."""
        return {"vocab_size": self.vocab_size, "max_len": self.max_len, "dim": self.dim, "depth": self.depth,
                "heads": self.heads, "mlp_ratio": self.mlp_ratio, "mask_id": self.mask_id}

    def embed(self, tokens: Tensor, positions: Optional[Tensor] = None) -> Tensor:
        """Input hidden states: token embedding plus learned position embedding."""
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape [batch, L], got {tuple(tokens.shape)}")
        if positions is None:
            if tokens.shape[1] > self.max_len:
                raise ValueError(f"sequence length {tokens.shape[1]} exceeds max_len={self.max_len}")
            pos = self.pos_emb.weight[: tokens.shape[1]][None]
        else:
            pos = self.pos_emb(positions)
            if pos.ndim == 2:
                pos = pos[None]
        return self.tok_emb(tokens) + pos

    def logits(self, h: Tensor) -> Tensor:
        """Output head on final hidden states ``[batch, S, dim]``."""
        out = self.head(self.ln_f(h))
        if self.mask_id is not None:
            out = out.masked_fill(self.never_predicted, float("-inf"))
        return out

    def forward(self, tokens: Tensor, positions: Optional[Tensor] = None, kv_hook: Optional[KVHook] = None) -> Tensor:
        h = self.embed(tokens, positions)
        for i, block in enumerate(self.blocks):
            h = block(h, i, kv_hook)
        return self.logits(h)
