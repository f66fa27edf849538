"""The small masked-diffusion transformers shipped with the package.

``load_pretrained(name)`` returns a :class:`diffkit.nn.MaskedTransformer` in eval mode, float32 on
the CPU unless told otherwise; ``info(name)`` returns its json (configuration, training recipe,
measured quality). Both are reproduced by ``python -m diffkit.discrete.train_checkpoints``.

| name | data | mask id |
| --- | --- | --- |
| ``hmm-default`` | :meth:`diffkit.discrete.HMMLanguage.default` (3 tokens), lengths 4..288 | 3 |
| ``tasks`` | the six list tasks of :mod:`diffkit.discrete.tasks` (``symbols=4, length=4``) | 14 |
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

import torch

from ..nn import MaskedTransformer
from ..train import load_checkpoint

__all__ = ["PRETRAINED", "CHECKPOINT_DIR", "load_pretrained", "info"]

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
PRETRAINED = ("hmm-default", "tasks")


def _path(name: str) -> Path:
    if name not in PRETRAINED:
        raise ValueError(f"unknown checkpoint {name!r}; choose one of {PRETRAINED}")
    return CHECKPOINT_DIR / name


def info(name: str) -> dict:
    """The checkpoint's json: ``{"config": ..., "metadata": {"recipe", "quality", "train_seconds", ...}}``."""
    return json.loads(_path(name).with_suffix(".json").read_text())


def load_pretrained(name: str, device: Union[str, torch.device, None] = None,
                    dtype: Optional[torch.dtype] = None) -> MaskedTransformer:
    """A shipped :class:`~diffkit.nn.MaskedTransformer` (eval mode), moved to ``device``/``dtype``.

    ``name`` is one of :data:`PRETRAINED`. The network's ``mask_id`` and ``vocab_size`` follow the
    vocabulary convention of :mod:`diffkit.discrete.hmm` (``mask_id = V``, logits over ``V + 1``).
    """
    net, _ = load_checkpoint(_path(name), lambda cfg: MaskedTransformer(**cfg))
    if device is not None or dtype is not None:
        net = net.to(device=device, dtype=dtype)
    return net.eval()
