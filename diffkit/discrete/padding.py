"""Left-padded prompts: which positions are padding, and where a row's real positions start.

A batch of prompts of different lengths is stored left-padded with a ``pad_id``: row ``j`` is
``[pad] * k_j + prompt_j``. The padding of a row is its *leading* run of ``pad_id``; a ``pad_id``
met after the first real token is a real token (models often pad with their EOS id, which may also
be generated). A pad-aware model treats the padding as absent, so that a padded row gets the
logits it gets alone:

- the padding is excluded from attention (as keys; what it computes as a query is never read);
- positions are counted from the row's first real token,
  ``position_i = max(#real tokens in [0, i] - 1, 0)`` (Dream's ``generate`` does the same with its
  attention mask).

:func:`~diffkit.discrete.decode` treats the padding as prompt: it is never masked, never a
candidate, and stays in place in the prompt-masked copy of classifier-free guidance.
"""

from __future__ import annotations

import numbers
from typing import Optional

import torch
from torch import Tensor

__all__ = ["leading_pads", "real_positions", "check_pad_id"]


def check_pad_id(pad_id, mask_id: Optional[int] = None) -> Optional[int]:
    """``pad_id`` as an int >= 0 (or ``None``), refused when it equals ``mask_id``."""
    if pad_id is None:
        return None
    if isinstance(pad_id, Tensor) and pad_id.numel() == 1 and not pad_id.is_floating_point():
        pad_id = int(pad_id.item())
    if isinstance(pad_id, bool) or not isinstance(pad_id, numbers.Integral):
        raise TypeError(f"pad_id must be an integer or None, got {type(pad_id).__name__} {pad_id!r}")
    pad_id = int(pad_id)
    if pad_id < 0:
        raise ValueError(f"pad_id must be >= 0, got {pad_id}")
    if mask_id is not None and pad_id == int(mask_id):
        raise ValueError(f"pad_id must differ from mask_id, both are {pad_id}")
    return pad_id


def leading_pads(tokens: Tensor, pad_id: Optional[int]) -> Tensor:
    """``[batch, L]`` bool: ``True`` on each row's leading run of ``pad_id`` (all ``False`` when
    ``pad_id`` is ``None``)."""
    if pad_id is None:
        return torch.zeros(tokens.shape, dtype=torch.bool, device=tokens.device)
    return (tokens == pad_id).to(torch.int8).cumprod(-1).bool()


def real_positions(pads: Tensor) -> Tensor:
    """``[batch, L]`` long: positions counted from each row's first real token (0 on the padding),
    ``max(cumsum(~pads) - 1, 0)``."""
    return ((~pads).long().cumsum(-1) - 1).clamp_min(0)
