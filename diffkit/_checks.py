"""Validation of public arguments: one small set of checks used by every module of the engine.

Every public function of diffkit refuses bad input with a ``TypeError`` (wrong kind of value) or a
``ValueError`` (right kind, wrong value) whose message starts with the argument's name and says
what is allowed, e.g. ``steps must be an integer in [1, 100000]; got 2.5`` or ``eta must lie in [0, 1]; got 2.0``. The checks return the
value in its canonical form (a python ``int`` or ``float``, a tensor), so a caller writes

    steps = _checks.integer("steps", steps, 1, MAX_STEPS)
    snr = _checks.real("snr", snr, low=0.0)
    x = _checks.tensor("x_start", x_start, floating=True)
    name = _checks.choice("solver", solver, available())

and never truncates, coerces or guesses. The rules:

* **integers are integers**: ``int``, numpy integers, integer 0-dim tensors, and floats that are
  whole numbers (``4.0``) are accepted; ``2.5``, ``nan``, ``inf`` and ``True`` are refused;
* **sizes have stated upper bounds**: every count that sizes an allocation (steps, lengths,
  batch sizes) passes ``high``, so ``10**9`` is refused before anything is allocated;
* **reals are finite** unless ``allow_inf=True`` says otherwise (``nan`` is always refused);
* **tensors**: type, floating-point-ness, number of dimensions and finiteness are checked;
  finiteness only forces a host synchronisation when ``sync=True`` (the default) or the tensor is
  on the CPU, so that an accelerator's sampling loop never waits on the host;
* **names** (of a solver, a path, a grid, a strategy) must be strings from the allowed tuple; an
  unhashable value (a list) is a ``TypeError`` naming the argument, not a crash in ``dict``.

Modules of the kit import this module and call it at their public entry points; the solver loops
themselves stay free of checks.
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable

import torch

__all__ = ["integer", "real", "tensor", "finite", "choice", "boolean", "function", "generator"]


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _scalar(value):
    """A python number from a number or a 0-dim / one-element tensor (``None`` if it is neither)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        return value.item()
    if isinstance(value, numbers.Number):
        return value
    if hasattr(value, "dtype") and hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()  # a numpy scalar
    return None


def _bounds(name: str, value, low, high, low_open: bool = False, high_open: bool = False,
            kind: str = "") -> None:
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        left, right = ("(" if low_open or low is None else "["), (")" if high_open or high is None else "]")
        what = f"be {kind} in" if kind else "lie in"
        raise ValueError(f"{name} must {what} {left}{lo}, {hi}{right}; got {_shown(value)}")


def integer(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` as a python ``int`` within ``[low, high]`` (either end optional).

    A whole float (``4.0``) is accepted; a float that is not whole, a non-finite one, a bool or a
    non-number is refused, never truncated."""
    if isinstance(value, bool) or (isinstance(value, torch.Tensor) and value.dtype == torch.bool):
        raise TypeError(f"{name} must be an integer; got {_shown(value)}")
    scalar = _scalar(value)
    if scalar is None or isinstance(scalar, (bool, complex)):
        raise TypeError(f"{name} must be an integer; got {type(value).__name__} {_shown(value)}")
    if isinstance(scalar, numbers.Integral):
        out = int(scalar)
    else:
        scalar = float(scalar)
        if not math.isfinite(scalar) or scalar != math.floor(scalar):
            raise ValueError(f"{name} must be an integer (a whole number); got {_shown(value)}")
        out = int(scalar)
    _bounds(name, out, low, high, kind="an integer")
    return out


def real(name: str, value, low: float | None = None, high: float | None = None, *,
         low_open: bool = False, high_open: bool = False, allow_inf: bool = False) -> float:
    """``value`` as a python ``float``: never ``nan``, finite unless ``allow_inf``, and within
    ``[low, high]`` (``low_open`` / ``high_open`` exclude an end)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number; got {_shown(value)}")
    scalar = _scalar(value)
    if scalar is None or isinstance(scalar, (bool, complex)):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__} {_shown(value)}")
    out = float(scalar)
    if math.isnan(out) or (math.isinf(out) and not allow_inf):
        raise ValueError(f"{name} must be a finite real number; got {_shown(value)}")
    _bounds(name, out, low, high, low_open, high_open)
    return out


def boolean(name: str, value) -> bool:
    """``value`` if it is a ``bool`` (``0``/``1`` and strings are refused)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {_shown(value)}")
    return value


def choice(name: str, value, allowed: Iterable[str]) -> str:
    """``value`` if it is one of the strings ``allowed``; the message lists them."""
    allowed = tuple(allowed)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {', '.join(allowed)} (a string); got "
                        f"{type(value).__name__} {_shown(value)}")
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def finite(name: str, x: torch.Tensor, sync: bool = True) -> None:
    """Raise ``ValueError`` if ``x`` holds a ``nan`` or an ``inf``. On an accelerator the check
    reads a flag back to the host; ``sync=False`` skips it there (CPU tensors are always checked)."""
    if x.device.type != "cpu" and not sync:
        return
    if x.numel() and not bool(torch.isfinite(x).all()):
        bad = "nan" if bool(torch.isnan(x).any()) else "inf"
        raise ValueError(f"{name} must be finite; it holds {bad}")


def tensor(name: str, value, *, floating: bool | None = None, dim: int | tuple[int, ...] | None = None,
           min_dim: int | None = None, check_finite: bool = True, convert: bool = False,
           sync: bool = True) -> torch.Tensor:
    """``value`` as a tensor, checked.

    ``convert=True`` turns a number, list or array into a tensor (integers into float64 when
    ``floating``); otherwise anything but a tensor is a ``TypeError``. ``floating=True`` requires
    (``False`` forbids) a floating-point dtype; ``dim`` fixes the number of dimensions (or a tuple
    of allowed numbers), ``min_dim`` a least one; ``check_finite`` refuses ``nan``/``inf`` (see
    :func:`finite` for ``sync``)."""
    if not isinstance(value, torch.Tensor):
        if not convert or value is None or isinstance(value, (str, bytes, dict, set)):
            kind = "a tensor" if not convert else "a tensor or an array of numbers"
            raise TypeError(f"{name} must be {kind}; got {type(value).__name__}")
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
            raise TypeError(f"{name} must be a tensor or an array of numbers; got "
                            f"{type(value).__name__} ({exc})") from None
        if floating and not value.is_floating_point() and value.dtype != torch.bool:
            value = value.to(torch.float64)
    if value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers; got dtype {value.dtype}")
    if floating is True and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {value.dtype}")
    if floating is False and value.is_floating_point():
        raise TypeError(f"{name} must be an integer tensor; got dtype {value.dtype}")
    if dim is not None:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        if value.dim() not in dims:
            want = " or ".join(str(d) for d in dims)
            raise ValueError(f"{name} must have {want} dimension(s); got shape {tuple(value.shape)}")
    if min_dim is not None and value.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimension(s); got shape "
                         f"{tuple(value.shape)}")
    if check_finite and value.is_floating_point():
        finite(name, value, sync=sync)
    return value


def function(name: str, value, what: str = "a callable D(x, t)"):
    """``value`` if it is callable."""
    if not callable(value):
        raise TypeError(f"{name} must be {what}; got {type(value).__name__}")
    return value


def generator(name: str, value):
    """``value`` if it is a ``torch.Generator`` or ``None``."""
    if value is not None and not isinstance(value, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None; got {type(value).__name__}")
    return value
