"""Small networks for the course: a time-conditioned MLP, a small UNet, a digits classifier and a
tiny masked-diffusion transformer.

- :class:`TimeMLP` is the denoiser network of the 2-D lessons: ``net(x, t)`` with ``x`` of shape
  ``[batch, d]`` and ``t`` a 0-dim or ``[batch]`` tensor in ``[0, 1]``, embedded with sinusoidal
  features (Vaswani et al. 2017, Sec. 3.5; the time embedding of Ho et al. 2020, DDPM).
- :class:`UNet` is the image denoiser network (DDPM's architecture, small): ``net(x, t, labels)``
  for ``[batch, C, H, W]`` with ``H, W`` divisible by 4, class-conditional with a null label.
- :class:`Classifier` is a small CNN whose accuracy and penultimate features measure samples.
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

__all__ = ["sinusoidal_embedding", "TimeMLP", "UNet", "ResBlock", "Classifier", "MaskedTransformer",
           "TransformerBlock", "KVHook"]

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


def _check_num_classes(num_classes) -> Optional[int]:
    if num_classes is None:
        return None
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be None or a positive integer; got {num_classes!r}")
    return num_classes


def _time_features(t, x: Tensor, dim: int) -> Tensor:
    """Sinusoidal features ``[1 or batch, dim]`` of a 0-dim or ``[batch]`` time for input ``x``."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] not in (1, x.shape[0])):
        raise ValueError(f"t must be 0-dim or [batch]={x.shape[0]}, got shape {tuple(t.shape)}")
    return sinusoidal_embedding(t, dim).to(x.dtype)


def _labels_or_null(labels, batch: int, num_classes: int, device) -> Tensor:
    """Class indices ``[batch]``; ``None`` means the null label ``num_classes`` (unconditional)."""
    if labels is None:
        return torch.full((batch,), num_classes, dtype=torch.long, device=device)
    labels = torch.as_tensor(labels, device=device)
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"labels must be integers; got {labels.dtype}")
    if labels.ndim == 0:
        labels = labels.expand(batch)
    if labels.shape != (batch,):
        raise ValueError(f"labels must be 0-dim or [batch]={batch}; got shape {tuple(labels.shape)}")
    return labels.long()


class TimeMLP(nn.Module):
    """MLP denoiser network ``net(x, t)`` for low-dimensional data.

    Input ``x`` is ``[batch, dim]`` and ``t`` a python float, a 0-dim or a ``[batch]`` tensor.
    ``t`` is embedded with :func:`sinusoidal_embedding` (``time_dim`` features), passed through a
    small MLP and concatenated with ``x``; ``depth`` hidden layers of width ``hidden`` with SiLU
    follow; the output has shape ``[batch, dim]`` (whatever the net predicts: x0, eps, v, ...).
    With ``num_classes`` the net is class-conditional: ``net(x, t, labels)`` adds a learned label
    embedding to the time embedding; index ``num_classes`` (``labels=None``) is the null label.
    """

    def __init__(self, dim: int, hidden: int = 128, depth: int = 3, time_dim: int = 32,
                 num_classes: Optional[int] = None):
        super().__init__()
        if dim < 1 or hidden < 1 or depth < 1 or time_dim < 2:
            raise ValueError(f"dim, hidden, depth must be >= 1 and time_dim >= 2, got {dim}, {hidden}, {depth}, {time_dim}")
        self.dim, self.hidden, self.depth, self.time_dim = dim, hidden, depth, time_dim + (time_dim % 2)
        self.num_classes = _check_num_classes(num_classes)
        self.time_mlp = nn.Sequential(nn.Linear(self.time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        if self.num_classes is not None:
            self.label_emb = nn.Embedding(self.num_classes + 1, hidden)
        layers: list[nn.Module] = [nn.Linear(dim + hidden, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    @property
    def config(self) -> dict:
        return {"dim": self.dim, "hidden": self.hidden, "depth": self.depth, "time_dim": self.time_dim,
                "num_classes": self.num_classes}

    def forward(self, x: Tensor, t, labels: Optional[Tensor] = None) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape [batch, {self.dim}], got {tuple(x.shape)}")
        emb = self.time_mlp(_time_features(t, x, self.time_dim))
        emb = emb.expand(x.shape[0], -1)
        if self.num_classes is not None:
            emb = emb + self.label_emb(_labels_or_null(labels, x.shape[0], self.num_classes, x.device))
        elif labels is not None:
            raise ValueError("labels given to an unconditional network (num_classes=None)")
        return self.net(torch.cat([x, emb], dim=-1))


def _groups(channels: int, groups: int) -> int:
    """The largest divisor of ``channels`` that is at most ``groups`` (for GroupNorm)."""
    return max(g for g in range(1, min(groups, channels) + 1) if channels % g == 0)


class ResBlock(nn.Module):
    """Residual block of the DDPM UNet (Ho et al. 2020, App. B; the wide ResNet of Zagoruyko &
    Komodakis 2016): ``GroupNorm -> SiLU -> conv3x3``, plus a projection of the embedding (time and
    class) added per channel, ``GroupNorm -> SiLU -> dropout -> conv3x3``, and a 1x1 skip when the
    number of channels changes."""

    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int = 8, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin, groups), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2 = nn.GroupNorm(_groups(cout, groups), cout)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return h + self.skip(x)


class UNet(nn.Module):
    """A small UNet ``net(x, t, labels=None)`` for images ``x [batch, channels, H, W]``.

    The architecture of DDPM (Ho et al. 2020, App. B) cut down for 8x8 digits: one
    :class:`ResBlock` per resolution with ``base * mults[i]`` channels, a stride-2 convolution
    between resolutions (so ``H`` and ``W`` must be divisible by ``2 ** (len(mults) - 1)``; 4 for
    the default), one block in the middle, and the mirror path up with skip connections
    (Ronneberger et al. 2015). ``t`` is embedded with :func:`sinusoidal_embedding` and an MLP;
    with ``num_classes`` a learned label embedding is added to it, index ``num_classes`` being the
    null label, so one network gives the conditional (``labels`` an int tensor ``[batch]`` or a
    0-dim int) and the unconditional (``labels=None``) prediction, as classifier-free guidance
    needs (Ho & Salimans 2022). The last convolution starts at zero, so a new network predicts 0.
    """

    def __init__(self, channels: int = 1, base: int = 32, mults: tuple = (1, 2, 2), num_classes: Optional[int] = None,
                 groups: int = 8, dropout: float = 0.0):
        super().__init__()
        mults = tuple(int(m) for m in mults)
        if channels < 1 or base < 1 or not mults or min(mults) < 1:
            raise ValueError(f"channels, base and every entry of mults must be >= 1; got {channels}, {base}, {mults}")
        self.channels, self.base, self.mults, self.groups, self.dropout = channels, base, mults, groups, dropout
        self.num_classes = _check_num_classes(num_classes)
        self.factor = 2 ** (len(mults) - 1)
        emb_dim = 4 * base
        self.time_mlp = nn.Sequential(nn.Linear(base, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if self.num_classes is not None:
            self.label_emb = nn.Embedding(self.num_classes + 1, emb_dim)
        widths = [base * m for m in mults]
        self.inp = nn.Conv2d(channels, base, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        ch = base
        for i, w in enumerate(widths):
            self.down.append(ResBlock(ch, w, emb_dim, groups, dropout))
            ch = w
            if i < len(widths) - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
        self.mid = ResBlock(ch, ch, emb_dim, groups, dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            self.up.append(ResBlock(ch + w, w, emb_dim, groups, dropout))
            ch = w
            if i > 0:
                self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1))
        self.out_norm = nn.GroupNorm(_groups(ch, groups), ch)
        self.out = nn.Conv2d(ch, channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def config(self) -> dict:
        """Constructor arguments; ``UNet(**net.config)`` rebuilds the architecture."""
        return {"channels": self.channels, "base": self.base, "mults": list(self.mults),
                "num_classes": self.num_classes, "groups": self.groups, "dropout": self.dropout}

    def forward(self, x: Tensor, t, labels: Optional[Tensor] = None) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels or x.shape[2] % self.factor or x.shape[3] % self.factor:
            raise ValueError(f"x must have shape [batch, {self.channels}, H, W] with H and W divisible by "
                             f"{self.factor}; got {tuple(x.shape)}")
        emb = self.time_mlp(_time_features(t, x, self.base)).expand(x.shape[0], -1)
        if self.num_classes is not None:
            emb = emb + self.label_emb(_labels_or_null(labels, x.shape[0], self.num_classes, x.device))
        elif labels is not None:
            raise ValueError("labels given to an unconditional network (num_classes=None)")
        h = self.inp(x)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid(h, emb)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], 1), emb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))


class Classifier(nn.Module):
    """A small convolutional classifier ``logits = net(x)`` for images ``[batch, channels, H, W]``
    with ``H`` and ``W`` divisible by 4: three 3x3 convolutions (the last two of stride 2) with
    SiLU, a hidden layer of ``features`` units (:meth:`features`, the embedding in which the
    kit's "digits FID" is measured, as the Inception pool features are for FID, Heusel et al.
    2017) and a linear head to ``num_classes`` logits."""

    def __init__(self, channels: int = 1, size: int = 8, num_classes: int = 10, width: int = 32,
                 features: int = 128, dropout: float = 0.1):
        super().__init__()
        if size % 4 or size < 4:
            raise ValueError(f"size must be a positive multiple of 4; got {size}")
        if channels < 1 or width < 1 or features < 1 or num_classes < 2:
            raise ValueError("channels, width, features must be >= 1 and num_classes >= 2")
        self.channels, self.size, self.num_classes = channels, size, num_classes
        self.width, self.n_features, self.dropout = width, features, dropout
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.SiLU(), nn.Flatten(),
            nn.Dropout(dropout), nn.Linear(2 * width * (size // 4) ** 2, features), nn.SiLU())
        self.head = nn.Linear(features, num_classes)

    @property
    def config(self) -> dict:
        """Constructor arguments; ``Classifier(**net.config)`` rebuilds the architecture."""
        return {"channels": self.channels, "size": self.size, "num_classes": self.num_classes,
                "width": self.width, "features": self.n_features, "dropout": self.dropout}

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1:] != (self.channels, self.size, self.size):
            raise ValueError(f"x must have shape [batch, {self.channels}, {self.size}, {self.size}]; "
                             f"got {tuple(x.shape)}")

    def features(self, x: Tensor) -> Tensor:
        """The penultimate features ``[batch, features]``."""
        self._check(x)
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


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
