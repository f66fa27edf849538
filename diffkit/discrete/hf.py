"""Run :func:`diffkit.discrete.decode` on a Hugging Face ``transformers`` model.

A diffkit decode model is a callable ``tokens [batch, L] -> logits [batch, L, vocab]``.
:class:`HFModel` makes one out of any ``transformers`` model whose output has ``.logits``:

- LLaDA (Nie et al. 2025) is a bidirectional mask predictor: the logits at position ``i`` predict
  token ``i`` (``shift_logits=False``, the default; LLaDA's mask id is 126336).
- Dream (Ye et al. 2025) is adapted from an autoregressive model and keeps its next-token head: the
  output at position ``i - 1`` predicts token ``i``. Dream's sampler therefore shifts the logits
  right by one position, ``logits[:, i] <- logits[:, i - 1]`` for ``i >= 1``, keeping position 0
  as it is (``shift_logits=True``).
- Left-padded prompts in a batch: give ``pad_id`` (each row's leading run of it is masked out of
  attention; a ``pad_id`` after the first real token, e.g. a generated EOS used as pad, is a real
  token, see :mod:`diffkit.discrete.padding`) or an explicit ``attention_mask`` of shape ``[batch, prompt_len]`` or ``[batch, L]``
  (1 = attend; a prompt-length mask is extended with ones over the generated positions). When a
  mask is used and the model's ``forward`` accepts ``position_ids``, positions are counted from the
  first real token, ``position_ids = max(cumsum(mask) - 1, 0)``, as Dream's ``generate`` does, so a
  left-padded row gets the same logits as the same row without padding. ``mask_format="2d"``
  passes the ``[batch, L]`` 0/1 mask (standard ``transformers`` models, LLaDA);
  ``mask_format="4d"`` passes Dream's ``[batch, 1, L, L]`` boolean mask
  ``mask[b, 0, i, j] = real_i and real_j`` (what Dream's ``generate`` builds for padded batches).

Nothing here downloads anything; see the README for loading local LLaDA or Dream weights.
"""

from __future__ import annotations

import inspect
from typing import Optional, Union

import torch
from torch import Tensor

from .padding import leading_pads

__all__ = ["HFModel", "shift_right"]


def shift_right(logits: Tensor) -> Tensor:
    """Dream's logit shift: ``out[:, 0] = logits[:, 0]`` and ``out[:, i] = logits[:, i - 1]``."""
    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)


class HFModel:
    """A ``transformers`` model as a diffkit decode model: ``logits = HFModel(model, mask_id)(tokens)``.

    Parameters
    ----------
    model: a ``transformers`` model (or any callable returning an object with ``.logits``, a tuple
        whose first entry is the logits, or the logits themselves).
    mask_id: the model's mask token id (LLaDA: 126336; Dream: ``tokenizer.mask_token_id``).
    shift_logits: apply Dream's one-position shift (:func:`shift_right`).
    attention_mask: optional ``[batch, prompt_len]`` or ``[batch, L]`` 0/1 mask for padded prompts.
    pad_id: alternatively, the pad token id; the attention mask is then 0 on each row's leading
        run of ``pad_id`` and 1 elsewhere.
    position_ids: ``"auto"`` (pass position ids counted from the first real token when a mask is
        used and the model accepts them), ``True`` or ``False``.
    mask_format: ``"2d"`` (``[batch, L]`` long) or ``"4d"`` (Dream's ``[batch, 1, L, L]`` bool).

    Calls run under ``torch.no_grad()``; ``calls`` counts them. Logits keep the model's dtype.
    """

    def __init__(self, model, mask_id: int, shift_logits: bool = False, attention_mask: Optional[Tensor] = None,
                 pad_id: Optional[int] = None, position_ids: Union[str, bool] = "auto", mask_format: str = "2d"):
        if attention_mask is not None and pad_id is not None:
            raise ValueError("give either attention_mask or pad_id, not both")
        if pad_id is not None and int(pad_id) == int(mask_id):
            raise ValueError(f"pad_id must differ from mask_id, both are {mask_id}")
        if mask_format not in ("2d", "4d"):
            raise ValueError(f"mask_format must be '2d' or '4d', got {mask_format!r}")
        self.mask_format = mask_format
        if position_ids not in ("auto", True, False):
            raise ValueError(f"position_ids must be 'auto', True or False, got {position_ids!r}")
        if attention_mask is not None:
            attention_mask = torch.as_tensor(attention_mask)
            if attention_mask.ndim != 2:
                raise ValueError(f"attention_mask must be [batch, prompt_len] or [batch, L], got {tuple(attention_mask.shape)}")
        self.model, self.mask_id, self.shift_logits = model, int(mask_id), bool(shift_logits)
        self.attention_mask, self.pad_id = attention_mask, pad_id
        if position_ids == "auto":
            try:
                position_ids = "position_ids" in inspect.signature(model.forward).parameters
            except (TypeError, ValueError, AttributeError):
                position_ids = False
        self.pass_position_ids = bool(position_ids)
        self.calls = 0

    def mask_for(self, tokens: Tensor) -> Optional[Tensor]:
        """The ``[batch, L]`` long attention mask used for ``tokens`` (``None``: attend everywhere)."""
        if self.pad_id is not None:
            return (~leading_pads(tokens, self.pad_id)).long()
        if self.attention_mask is None:
            return None
        am = self.attention_mask.to(tokens.device).long()
        b, length = tokens.shape
        if am.shape[0] != b or am.shape[1] > length:
            raise ValueError(f"attention_mask of shape {tuple(am.shape)} does not fit tokens of shape {(b, length)}")
        if am.shape[1] < length:
            am = torch.cat([am, am.new_ones(b, length - am.shape[1])], dim=1)
        return am

    def __call__(self, tokens: Tensor) -> Tensor:
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape [batch, L], got {tuple(tokens.shape)}")
        kwargs = {}
        am = self.mask_for(tokens)
        if am is not None:
            if self.mask_format == "4d":
                real = am.bool()
                kwargs["attention_mask"] = real[:, None, None, :] & real[:, None, :, None]
            else:
                kwargs["attention_mask"] = am
            if self.pass_position_ids:
                kwargs["position_ids"] = (am.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            out = self.model(tokens, **kwargs)
        logits = out.logits if hasattr(out, "logits") else (out[0] if isinstance(out, (tuple, list)) else out)
        self.calls += 1
        if logits.ndim != 3 or logits.shape[:2] != tokens.shape:
            raise ValueError(f"model returned logits of shape {tuple(logits.shape)}, expected [{tokens.shape[0]}, {tokens.shape[1]}, vocab]")
        if logits.shape[2] <= self.mask_id:
            raise ValueError(f"logits have {logits.shape[2]} entries, too few for mask_id={self.mask_id}")
        return shift_right(logits) if self.shift_logits else logits

    def __repr__(self) -> str:
        return (f"HFModel({type(self.model).__name__}, mask_id={self.mask_id}, shift_logits={self.shift_logits}, "
                f"pad_id={self.pad_id}, attention_mask={'given' if self.attention_mask is not None else None})")
