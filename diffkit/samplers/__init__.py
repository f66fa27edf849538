"""Samplers: every solver family as a plain function, one registry, one front door.

========================  ============================================================  ========
name                      what it is                                                    module
========================  ============================================================  ========
``ddpm``                  ancestral sampling (Ho et al. 2020)                           ancestral
``ddim``                  DDIM with ``eta`` (Song et al. 2021, eq. 12)                  ddim
``euler-maruyama``        Euler-Maruyama on the reverse SDE (Song et al. 2021)          sde
``pc``                    predictor-corrector with a Langevin corrector (Song et al.)   sde
``euler``                 Euler in ``t`` on the probability-flow ODE                    ode
``heun``                  EDM's Alg. 2 with churn (Karras et al. 2022)                  ode
``rk4``                   classical Runge-Kutta in ``t`` on the probability-flow ODE   ode
``dpm++2m``, ``dpm++3m``  DPM-Solver++ multistep, data prediction (Lu et al. 2022b)     dpmsolver
``adaptive``              ``torchdiffeq`` dopri5 with ``rtol``/``atol``                 adaptive
========================  ============================================================  ========

``sample(denoiser, path, x_start, solver, steps, grid, generator, return_trajectory, **options)``
(also ``diffkit.sample``) runs one and returns a :class:`SampleResult` (``x``, ``nfe``, ``ts``, ``xs``,
``x0s``). :mod:`.law` reads a run with any affine denoiser as ``x_out = A x_start + B z + b``;
the exact Gaussian laws built on it (``sampler_law``, ``sampler_moments``, ``affine_map``) live
with the oracles in :mod:`diffkit.analytic` and are also reachable here by name (resolved on first
use, so this package never imports the oracles). ``available()`` lists the solvers, ``get(name)`` returns one as a
plain function ``fn(denoiser, path, x, ts, **options)``, ``info(name)`` its record (options,
stochastic, affine), and ``register(name)`` adds one.

Every solver: never evaluates the denoiser at ``t = 0`` (a step onto ``t = 0`` is the denoising
step ``x = D(x, t_prev)``); follows the dtype and device of its input; draws noise only from the
passed ``torch.Generator`` (or a ``noise(k, x)`` hook); makes no host synchronisation in its loop
(all but ``adaptive``, whose step control reads error norms on the host).
"""

# the import order is the order of `available()`
from . import ancestral, ddim, sde, ode, dpmsolver, adaptive  # noqa: F401, I001  (registers the solvers)
from .law import push_forward, read_affine, solver_affine_map
from .registry import Solver, available, get, info, register
from .sample import SampleResult, make_grid, sample

__all__ = ["sample", "SampleResult", "sampler_law", "sampler_moments", "affine_map", "available", "get", "info",
           "register", "Solver", "make_grid", "read_affine", "solver_affine_map", "push_forward"]

_ORACLE_LAWS = ("sampler_law", "sampler_moments", "affine_map")


def __getattr__(name):
    """``sampler_law``, ``sampler_moments`` and ``affine_map`` are :mod:`diffkit.analytic`'s."""
    if name in _ORACLE_LAWS:
        from .. import analytic

        return getattr(analytic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
