"""The solver registry: names -> plain functions ``solver(denoiser, path, x, ts, **options)``.

A solver function takes the denoiser ``D(x, t)``, a :class:`~diffkit.paths.GaussianPath`, the start
``x`` (a sample at ``ts[0]``) and a float64 CPU grid ``ts`` (decreasing), plus keyword-only
options; it returns the state at ``ts[-1]``. Every solver also accepts ``generator`` (a
``torch.Generator``, the only source of randomness), ``noise`` (an optional ``noise(k, x)`` giving
the ``k``-th standard normal draw of the run, used to read off exact laws) and ``callback`` (called
as ``callback(i, x_i, x0_i)`` at each grid point ``i < len(ts) - 1`` with the state and the
denoiser's prediction there). The number of denoiser calls is counted by :func:`diffkit.sample`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Solver", "register", "get", "info", "available"]

#: options every solver takes; the others are solver-specific
COMMON_OPTIONS = ("generator", "noise", "callback")


@dataclass(frozen=True)
class Solver:
    """A registered solver: its function, whether it draws noise, whether its output is an affine
    map of its start (and of its noise) for an affine denoiser (so :func:`sampler_law` applies),
    and the names of its own options."""

    name: str
    fn: Callable
    stochastic: bool = False
    affine: bool = True
    options: tuple[str, ...] = field(default_factory=tuple)


_REGISTRY: dict[str, Solver] = {}


def register(name: str, *, stochastic: bool = False, affine: bool = True):
    """Decorator: register ``fn`` under ``name``. Its keyword-only parameters other than
    ``generator``, ``noise`` and ``callback`` are its options."""

    def wrap(fn: Callable) -> Callable:
        params = inspect.signature(fn).parameters.values()
        options = tuple(p.name for p in params
                        if p.kind is p.KEYWORD_ONLY and p.name not in COMMON_OPTIONS)
        _REGISTRY[name] = Solver(name, fn, stochastic, affine, options)
        return fn

    return wrap


#: the order in which the course presents the solvers; solvers registered later follow
ORDER = ("ddpm", "ddim", "euler-maruyama", "pc", "euler", "heun", "dpm++2m", "dpm++3m", "rk4",
         "adaptive")


def available() -> tuple[str, ...]:
    """The registered solver names: the built-in ones in the course's order, then any others."""
    return tuple(n for n in ORDER if n in _REGISTRY) + tuple(n for n in _REGISTRY if n not in ORDER)


def info(name: str) -> Solver:
    """The :class:`Solver` record of ``name``; ``ValueError`` naming the allowed values if unknown."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"solver must be one of {', '.join(available())}; got {name!r}")
    return _REGISTRY[name]


def get(name: str) -> Callable:
    """The solver function registered as ``name``."""
    return info(name).fn
