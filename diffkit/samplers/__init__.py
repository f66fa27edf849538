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
``x0s``). ``sampler_law(solver, path, data, steps, grid, start=None, **options)`` is the exact
Gaussian law of a run on Gaussian data with its exact denoiser, read off ``affine_map`` (the run as
``x_out = A x_start + B z + b``). ``available()`` lists the solvers, ``get(name)`` returns one as a
plain function ``fn(denoiser, path, x, ts, **options)``, ``info(name)`` its record (options,
stochastic, affine), and ``register(name)`` adds one.

Every solver: never evaluates the denoiser at ``t = 0`` (a step onto ``t = 0`` is the denoising
step ``x = D(x, t_prev)``); follows the dtype and device of its input; draws noise only from the
passed ``torch.Generator`` (or a ``noise(k, x)`` hook); makes no host synchronisation in its loop
(all but ``adaptive``, whose step control reads error norms on the host).
"""

# the import order is the order of `available()`
from . import ancestral, ddim, sde, ode, dpmsolver, adaptive  # noqa: F401, I001  (registers the solvers)
from .law import affine_map, sampler_law, sampler_moments
from .registry import Solver, available, get, info, register
from .sample import SampleResult, make_grid, sample

__all__ = ["sample", "SampleResult", "sampler_law", "sampler_moments", "affine_map", "available", "get", "info",
           "register", "Solver", "make_grid"]
