"""``diffkit.sample``: the front door to every solver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .. import _checks
from .. import paths as _paths
from ._common import memo
from .registry import info

__all__ = ["sample", "SampleResult", "make_grid", "resolve_path"]


@dataclass
class SampleResult:
    """What a sampling run returns.

    ``x``: the final samples (shape, dtype and device of ``x_start``); ``nfe``: the number of
    denoiser calls; ``ts``: the grid actually used (decreasing, dtype and device of ``x_start``);
    ``xs``: ``[len(ts), *x.shape]``, the state at each grid point (``xs[0] = x_start``,
    ``xs[-1] = x``), and ``x0s``: ``[len(ts) - 1, *x.shape]``, the denoiser's prediction at each grid
    point but the last, when ``return_trajectory=True`` (``x0s`` is ``None`` for ``adaptive``,
    which does not evaluate the denoiser at the grid points).
    """

    x: torch.Tensor
    nfe: int
    ts: torch.Tensor
    xs: torch.Tensor | None = None
    x0s: torch.Tensor | None = None


def make_grid(grid, steps, path) -> torch.Tensor:
    """The float64 CPU grid of a run: a named grid built by :func:`diffkit.paths.grid`, or a
    1-D decreasing tensor of ``t`` values, validated there."""
    if isinstance(grid, torch.Tensor):
        return _paths.grid(grid, None, path).detach().to(device="cpu", dtype=torch.float64)
    if not isinstance(grid, str):
        raise TypeError(f"grid must be one of {', '.join(_paths.GRIDS)} or a decreasing tensor; "
                         f"got {type(grid).__name__}")
    key = (grid, steps if isinstance(steps, int) and not isinstance(steps, bool) else repr(steps))
    return memo("grid", path, _NO_GRID, key, lambda: _paths.grid(grid, steps, path))


_NO_GRID = torch.zeros(0, dtype=torch.float64)


_NAMED_PATHS: dict = {}


def resolve_path(path):
    """A path object; a name gives one shared object per name (so that the memoised coefficients
    of :mod:`diffkit.samplers._common` are found again on the next call)."""
    if isinstance(path, str):
        if path not in _NAMED_PATHS:
            _NAMED_PATHS[path] = _paths.get(path)
        return _NAMED_PATHS[path]
    return _paths.get(path)


class _Counted:
    """Wraps a denoiser and counts its calls (a python counter: no host synchronisation). A
    ``ValueError``/``TypeError`` of the denoiser (an oracle refusing a state of the wrong shape)
    is raised again with the shape of ``x_start`` (or the argument ``name``), which is where such a
    state comes from; without ``x_start`` it only counts."""

    def __init__(self, denoiser: Callable, x_start: torch.Tensor | None = None, name: str = "x_start"):
        self.denoiser, self.calls, self.name = denoiser, 0, name
        self.shape = None if x_start is None else tuple(x_start.shape)

    def __call__(self, x, t):
        self.calls += 1
        if self.shape is None:  # counting only
            return self.denoiser(x, t)
        try:
            return self.denoiser(x, t)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"denoiser refused a state of {self.name}'s shape {self.shape}: {exc}") from exc


def sample(denoiser: Callable, path, x_start: torch.Tensor, solver: str = "dpm++2m",
           steps: int = 10, grid="logsnr", generator: torch.Generator | None = None,
           return_trajectory: bool = False, **options) -> SampleResult:
    """Run ``solver`` from ``x_start`` (a sample at ``ts[0]``) down the grid to ``t = 0``.

    ``denoiser``: any callable ``D(x, t) -> E[x0 | x_t = x]``; it is called with ``t`` a 0-dim tensor
    of ``x_start``'s dtype and device, never at ``t = 0`` (the step onto ``t = 0`` is the denoising
    step ``x = D(x, t_prev)``). ``path``: a name of :data:`diffkit.paths.NAMES` or a path.
    ``solver``: one of :func:`diffkit.samplers.available`. ``grid``: ``"uniform"``, ``"logsnr"``,
    ``"karras"`` (with ``steps`` steps, :func:`diffkit.paths.grid`) or a decreasing 1-D tensor of
    ``t`` values (``steps`` is then ignored). ``generator``: the only source of randomness.
    ``options``: the solver's own (``eta``, ``churn``, ``snr``, ``rtol``, ...; see each solver), and
    ``noise(k, x)`` to supply the ``k``-th standard normal draw of a stochastic solver.

    The run is made under ``torch.no_grad()``; to differentiate through a run call the solver
    function itself (``diffkit.samplers.get(solver)``).

    Checked before the run: ``x_start`` is a finite floating-point tensor (one host
    synchronisation on an accelerator, before the loop), ``steps`` an integer in
    ``[1, diffkit.paths.MAX_STEPS]``, and each solver checks its options. Checked after it: the
    output is finite (a ``ValueError`` naming the denoiser otherwise, never silent ``nan``).
    """
    spec = info(solver)
    extra = set(options) - set(spec.options) - {"noise"}
    if extra:
        allowed = ", ".join(spec.options + ("noise",))
        raise TypeError(f"solver {solver!r} takes the options {allowed}; got {', '.join(sorted(extra))}")
    if not callable(denoiser):
        raise TypeError(f"denoiser must be a callable D(x, t); got {type(denoiser).__name__}")
    x_start = _checks.tensor("x_start", x_start, floating=True, min_dim=1)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None; got {type(generator).__name__}")
    if options.get("noise") is not None and not callable(options["noise"]):
        raise TypeError(f"noise must be a callable noise(k, x) or None; got {type(options['noise']).__name__}")
    _checks.boolean("return_trajectory", return_trajectory)
    path = resolve_path(path)
    ts = make_grid(grid, steps, path)
    counted = _Counted(denoiser, x_start)
    xs: list = []
    x0s: list = []

    def record(i, x, x0):
        xs.append(x)
        x0s.append(x0)

    with torch.no_grad():
        x = spec.fn(counted, path, x_start, ts, generator=generator,
                    callback=record if return_trajectory else None, **options)
    if not isinstance(x, torch.Tensor) or x.shape != x_start.shape:
        raise ValueError(f"denoiser must return a tensor shaped like its input "
                         f"{tuple(x_start.shape)}; the run ended with "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("denoiser: the run produced nan or inf from a finite x_start; the "
                         "denoiser returned non-finite values or overflowed in "
                         f"{x_start.dtype}")
    ts_out = ts.to(dtype=x_start.dtype, device=x_start.device, copy=True)
    result = SampleResult(x=x, nfe=counted.calls, ts=ts_out)
    if return_trajectory:
        result.xs = torch.stack(xs + [x])
        result.x0s = None if any(p is None for p in x0s) else torch.stack(x0s)
    return result
