"""Gaussian paths ``x_t = alpha(t) * x0 + sigma(t) * eps``, logSNR re-timing and time grids.

Conventions (one set, everywhere in diffkit):

* time ``t`` runs over ``[0, 1]``; ``t = 0`` is data (``alpha = 1``, ``sigma = 0``) and ``t = 1``
  the prior;
* ``logsnr(t) = 2 * log(alpha(t) / sigma(t))`` is strictly decreasing (``+inf`` at ``t = 0``), so
  every path can be re-timed as any other through it (Kingma et al. 2021, "Variational Diffusion
  Models", Sec. 3: the continuous-time ELBO only depends on the SNR at the end points);
* every method takes ``t`` as a python float, a 0-dim tensor or a ``[batch]`` tensor; a python
  float becomes a float64 tensor, a tensor keeps its dtype and device.

The five families:

=============  =======================================================================
``vp-linear``  variance-preserving, linear ``beta(t)`` (Ho et al. 2020; Song et al. 2021, eq. 33)
``vp-cosine``  variance-preserving, cosine (Nichol & Dhariwal 2021), written through its angle
``ve``         variance-exploding, geometric noise (Song et al. 2021, eq. 31) started exactly at data
``edm``        ``alpha = 1``, ``sigma = sigma_max * t`` (Karras et al. 2022, Table 1)
``linear``     rectified flow, ``alpha = 1 - t``, ``sigma = t`` (Liu et al. 2022; Lipman et al. 2022)
=============  =======================================================================
"""

from __future__ import annotations

import inspect
import math
from typing import Callable

import torch

from . import _checks

__all__ = [
    "NAMES",
    "GRIDS",
    "GaussianPath",
    "VPLinear",
    "VPCosine",
    "VE",
    "EDM",
    "Linear",
    "get",
    "grid",
    "expand",
    "as_time",
    "check_time",
    "retime",
    "MAX_STEPS",
]

NAMES = ("vp-linear", "vp-cosine", "ve", "edm", "linear")
GRIDS = ("uniform", "logsnr", "karras")

#: the default ends of the ``logsnr`` and ``karras`` grids: logSNR = -2 log(0.002), EDM's
#: ``sigma_min = 0.002`` (Karras et al. 2022, Table 1), and a floor of -20 for paths whose
#: logSNR is -inf at t = 1.
LOGSNR_MAX = -2.0 * math.log(0.002)
LOGSNR_MIN = -20.0

#: stated ranges of the path parameters: wide enough for every schedule in use, narrow enough
#: that no coefficient overflows or underflows float64 (``beta`` in ``(0, MAX_BETA]``, the VE/EDM
#: noise scales in ``[MIN_SIGMA, MAX_SIGMA]``, the cosine path's final logSNR in the range below).
MAX_BETA = 1000.0
MIN_SIGMA, MAX_SIGMA = 1e-8, 1e6
COSINE_LOGSNR_MIN_RANGE = (-60.0, 10.0)

#: the largest number of steps of a named grid (and so of a sampling run): a bound stated before
#: anything is allocated, far above any useful run (a few thousand steps reach float64's floor).
MAX_STEPS = 100_000

#: the most entries of a tensor the kit allocates on request (a prior draw): 10^8 float64 numbers
#: are 800 MB
MAX_ELEMENTS = 10**8

#: the range of ``rho`` of the ``karras`` grid (EDM uses 7; large ``rho`` tends to a logSNR grid)
#: and the largest end logSNR of a named grid (``t`` of order ``exp(-50)`` on every path)
RHO_RANGE = (0.1, 1000.0)
MAX_LOGSNR = 100.0


def as_time(t, like: torch.Tensor | None = None, name: str = "t") -> torch.Tensor:
    """``t`` as a tensor: a python number becomes float64 (or ``like``'s dtype and device).

    Anything but a real number or a real tensor is a ``TypeError`` naming ``name``."""
    if isinstance(t, torch.Tensor):
        if t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"{name} must be a real number or tensor; got dtype {t.dtype}")
        if like is not None:
            return t.to(dtype=like.dtype, device=like.device)
        return t if t.is_floating_point() else t.to(torch.get_default_dtype())
    if isinstance(t, bool) or not isinstance(t, (int, float)) and not _is_real_array(t):
        raise TypeError(f"{name} must be a real number or tensor; got {type(t).__name__}")
    if like is not None:
        return torch.as_tensor(t, dtype=like.dtype, device=like.device)
    return torch.as_tensor(t, dtype=torch.float64)


def _is_real_array(t) -> bool:
    """A numpy scalar or array, or a (nested) list of numbers: what ``torch.as_tensor`` reads."""
    import numbers

    if isinstance(t, numbers.Real):
        return True
    if isinstance(t, (list, tuple)):
        return len(t) > 0 and all(_is_real_array(v) for v in t)
    kind = getattr(getattr(t, "dtype", None), "kind", None)
    return kind in ("f", "i", "u")


def check_time(t, name: str = "t") -> None:
    """Raise ``ValueError`` if ``t`` lies outside ``[0, 1]`` or is ``nan`` (``TypeError`` if it is
    not a real number or tensor).

    Checked only for python numbers and CPU tensors, so that no host synchronisation is ever
    forced on an accelerator.
    """
    if isinstance(t, torch.Tensor):
        as_time(t, name=name)
        if t.device.type != "cpu":
            return
        if t.dim() == 0:
            bad = not 0.0 <= float(t) <= 1.0
        else:
            bad = not bool(((t >= 0) & (t <= 1)).all())
    else:
        tt = as_time(t, name=name)
        bad = not bool(((tt >= 0) & (tt <= 1)).all())
    if bad:
        raise ValueError(f"{name} must lie in [0, 1] (t = 0 is data, t = 1 the prior); got {t}")


def path_time(t) -> torch.Tensor:
    """``t`` for a path's coefficient (``alpha``, ``sigma``, ...): a tensor as :func:`as_time`
    makes it, refused if it is ``nan`` or negative. Times above 1 are allowed: the closed forms
    extend there, which :func:`retime` uses to say that no time of a path reaches a logSNR.
    Checked on python numbers and CPU tensors only (no host synchronisation)."""
    t = as_time(t)
    if t.device.type == "cpu":
        bad = not float(t) >= 0.0 if t.dim() == 0 else not bool((t >= 0).all())
        if bad:
            raise ValueError(f"t must be a time >= 0 (t = 0 is data, t = 1 the prior); got {t}")
    return t


def path_logsnr(logsnr) -> torch.Tensor:
    """``logsnr`` as a tensor for :meth:`GaussianPath.t_from_logsnr`, refused if ``nan`` (CPU)."""
    lam = as_time(logsnr, name="logsnr")
    if lam.device.type == "cpu" and bool(torch.isnan(lam).any()):
        raise ValueError("logsnr must not be nan")
    return lam


def expand(coef: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a 0-dim or ``[batch]`` coefficient so that it broadcasts against ``x [batch, ...]``."""
    if not isinstance(coef, torch.Tensor) or not isinstance(x, torch.Tensor):
        raise TypeError(f"coef and x must be tensors; got {type(coef).__name__} and {type(x).__name__}")
    if coef.dim() == 0:
        return coef
    if coef.dim() != 1 or coef.shape[0] not in (1, x.shape[0]):
        raise ValueError(
            f"t must be a scalar or a [batch] tensor with batch = {x.shape[0]}; got shape "
            f"{tuple(coef.shape)}"
        )
    return coef.reshape(coef.shape[0], *([1] * (x.dim() - 1)))


class GaussianPath:
    """A Gaussian path ``x_t = alpha(t) x0 + sigma(t) eps`` on ``t in [0, 1]``.

    Subclasses give ``alpha``, ``sigma``, their time derivatives and ``t_from_logsnr`` in closed
    form; ``logsnr`` is computed from ``alpha`` and ``sigma`` unless a subclass has a better form.
    """

    name: str = "path"

    def alpha(self, t) -> torch.Tensor:
        """The signal scale ``alpha(t)`` (1 at ``t = 0``)."""
        raise NotImplementedError  # abstract

    def sigma(self, t) -> torch.Tensor:
        """The noise scale ``sigma(t)`` (0 at ``t = 0``)."""
        raise NotImplementedError  # abstract

    def dalpha(self, t) -> torch.Tensor:
        """``d alpha / dt``."""
        raise NotImplementedError  # abstract

    def dsigma(self, t) -> torch.Tensor:
        """``d sigma / dt``."""
        raise NotImplementedError  # abstract

    def t_from_logsnr(self, logsnr) -> torch.Tensor:
        """The time at which the path reaches ``logsnr`` (the inverse of :meth:`logsnr`)."""
        raise NotImplementedError  # abstract

    def logsnr(self, t) -> torch.Tensor:
        """``2 * log(alpha / sigma)``; ``+inf`` at ``t = 0``."""
        t = path_time(t)
        return 2.0 * (torch.log(self.alpha(t)) - torch.log(self.sigma(t)))

    def dlogsnr(self, t) -> torch.Tensor:
        """``d logsnr / dt = 2 (alpha'/alpha - sigma'/sigma)`` (negative: logSNR decreases)."""
        t = path_time(t)
        return 2.0 * (self.dalpha(t) / self.alpha(t) - self.dsigma(t) / self.sigma(t))

    @property
    def t_start(self) -> float:
        """Where the named grids start: 1, or where logSNR = -20 if logSNR(1) is below that
        (``linear``, whose ``alpha(1) = 0`` would leave EDM's and the SDE's variables undefined)."""
        l1 = float(self.logsnr(1.0))
        if l1 >= LOGSNR_MIN:
            return 1.0
        return float(self.t_from_logsnr(LOGSNR_MIN))

    def prior(self, shape, generator: torch.Generator | None = None, dtype=torch.float64,
              device=None) -> torch.Tensor:
        """A draw from the prior ``N(0, sigma(1)^2 I)``: the start of sampling at ``t = 1``.

        ``shape``: an integer or a tuple of integers, at most :data:`MAX_ELEMENTS` entries in all."""
        if not isinstance(shape, (list, tuple, torch.Size)):
            shape = (shape,)
        shape = tuple(_checks.integer("shape", n, 0) for n in shape)
        if math.prod(shape) > MAX_ELEMENTS:
            raise ValueError(f"shape must have at most {MAX_ELEMENTS} elements; got {shape}")
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating-point torch.dtype; got {dtype!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None; got {type(generator).__name__}")
        z = torch.randn(shape, generator=generator, dtype=dtype, device=device)
        return self.sigma(as_time(1.0, like=z)) * z

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class VPLinear(GaussianPath):
    """VP path with ``beta(t) = beta_min + t (beta_max - beta_min)`` (Song et al. 2021, eq. 33).

    ``log alpha(t) = -t^2 (beta_max - beta_min) / 4 - t beta_min / 2``, ``sigma = sqrt(1 - alpha^2)``.
    """

    name = "vp-linear"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        beta_min = _checks.real("beta_min", beta_min, 0.0, MAX_BETA, low_open=True)
        beta_max = _checks.real("beta_max", beta_max, 0.0, MAX_BETA, low_open=True)
        if not beta_min < beta_max:
            raise ValueError(f"beta_max must exceed beta_min; got beta_min={beta_min}, beta_max={beta_max}")
        self.beta_min, self.beta_max = beta_min, beta_max

    def _log_alpha(self, t):
        return -0.25 * t * t * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def beta(self, t) -> torch.Tensor:
        t = path_time(t)
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def alpha(self, t):
        return torch.exp(self._log_alpha(path_time(t)))

    def sigma(self, t):
        return torch.sqrt(-torch.expm1(2.0 * self._log_alpha(path_time(t))))

    def dalpha(self, t):
        t = path_time(t)
        return -0.5 * self.beta(t) * self.alpha(t)

    def dsigma(self, t):
        t = path_time(t)
        a = self.alpha(t)
        return -a * self.dalpha(t) / self.sigma(t)

    def logsnr(self, t):
        la2 = 2.0 * self._log_alpha(path_time(t))
        return la2 - torch.log(-torch.expm1(la2))

    def t_from_logsnr(self, logsnr):
        # alpha^2 = sigmoid(logsnr)  =>  (Delta/2) t^2 + beta_min t - softplus(-logsnr) = 0
        lam = path_logsnr(logsnr)
        delta = self.beta_max - self.beta_min
        c = torch.nn.functional.softplus(-lam)
        return (torch.sqrt(self.beta_min**2 + 2.0 * delta * c) - self.beta_min) / delta

    def __repr__(self):
        return f"VPLinear(beta_min={self.beta_min}, beta_max={self.beta_max})"


class VPCosine(GaussianPath):
    """VP cosine path through its angle: ``alpha = cos(theta)``, ``sigma = sin(theta)``,
    ``theta(t) = t * theta_max`` (Nichol & Dhariwal 2021, eq. 17, without the offset ``s``).

    ``theta_max = atan(exp(-logsnr_min / 2))`` keeps logSNR(1) = ``logsnr_min`` finite.
    ``logsnr = -2 log tan(theta)``.
    """

    name = "vp-cosine"

    def __init__(self, logsnr_min: float = -20.0):
        self.logsnr_min = _checks.real("logsnr_min", logsnr_min, *COSINE_LOGSNR_MIN_RANGE)
        self.theta_max = math.atan(math.exp(-0.5 * self.logsnr_min))

    def alpha(self, t):
        return torch.cos(self.theta_max * path_time(t))

    def sigma(self, t):
        return torch.sin(self.theta_max * path_time(t))

    def dalpha(self, t):
        return -self.theta_max * torch.sin(self.theta_max * path_time(t))

    def dsigma(self, t):
        return self.theta_max * torch.cos(self.theta_max * path_time(t))

    def logsnr(self, t):
        return -2.0 * torch.log(torch.tan(self.theta_max * path_time(t)))

    def t_from_logsnr(self, logsnr):
        return torch.atan(torch.exp(-0.5 * path_logsnr(logsnr))) / self.theta_max

    def __repr__(self):
        return f"VPCosine(logsnr_min={self.logsnr_min})"


class VE(GaussianPath):
    """Variance-exploding path: ``alpha = 1``, ``sigma(t)^2 = sigma_min^2 (r^(2t) - 1)``,
    ``r = sigma_max / sigma_min``.

    This is the exact marginal variance of Song et al.'s VE SDE (2021, eq. 30-31, with
    ``sigma(t) = sigma_min r^t`` the SDE's noise scale) started from clean data at ``t = 0``,
    so that ``sigma(0) = 0`` exactly.
    """

    name = "ve"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0):
        sigma_min = _checks.real("sigma_min", sigma_min, MIN_SIGMA, MAX_SIGMA)
        sigma_max = _checks.real("sigma_max", sigma_max, MIN_SIGMA, MAX_SIGMA)
        if not sigma_min < sigma_max:
            raise ValueError(f"sigma_max must exceed sigma_min; got sigma_min={sigma_min}, "
                             f"sigma_max={sigma_max}")
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self.log_r = math.log(self.sigma_max / self.sigma_min)

    def alpha(self, t):
        return torch.ones_like(path_time(t))

    def sigma(self, t):
        return self.sigma_min * torch.sqrt(torch.expm1(2.0 * self.log_r * path_time(t)))

    def dalpha(self, t):
        return torch.zeros_like(path_time(t))

    def dsigma(self, t):
        t = path_time(t)
        return self.sigma_min**2 * self.log_r * torch.exp(2.0 * self.log_r * t) / self.sigma(t)

    def logsnr(self, t):
        return -torch.log(self.sigma_min**2 * torch.expm1(2.0 * self.log_r * path_time(t)))

    def t_from_logsnr(self, logsnr):
        lam = path_logsnr(logsnr)
        # r^(2t) = 1 + exp(-logsnr) / sigma_min^2
        return torch.log1p(torch.exp(-lam - 2.0 * math.log(self.sigma_min))) / (2.0 * self.log_r)

    def __repr__(self):
        return f"VE(sigma_min={self.sigma_min}, sigma_max={self.sigma_max})"


class EDM(GaussianPath):
    """EDM's path: ``alpha = 1``, ``sigma = sigma_max * t`` (Karras et al. 2022, ``sigma(t) = t``
    rescaled to ``t in [0, 1]``)."""

    name = "edm"

    def __init__(self, sigma_max: float = 80.0):
        self.sigma_max = _checks.real("sigma_max", sigma_max, 0.0, MAX_SIGMA, low_open=True)

    def alpha(self, t):
        return torch.ones_like(path_time(t))

    def sigma(self, t):
        return self.sigma_max * path_time(t)

    def dalpha(self, t):
        return torch.zeros_like(path_time(t))

    def dsigma(self, t):
        return torch.full_like(path_time(t), self.sigma_max)

    def logsnr(self, t):
        return -2.0 * torch.log(self.sigma_max * path_time(t))

    def t_from_logsnr(self, logsnr):
        return torch.exp(-0.5 * path_logsnr(logsnr)) / self.sigma_max

    def __repr__(self):
        return f"EDM(sigma_max={self.sigma_max})"


class Linear(GaussianPath):
    """Rectified flow / conditional OT path: ``alpha = 1 - t``, ``sigma = t`` (Liu et al. 2022;
    Lipman et al. 2022). ``logsnr(t) = 2 log((1 - t) / t)``, ``-inf`` at ``t = 1``."""

    name = "linear"

    def alpha(self, t):
        return 1.0 - path_time(t)

    def sigma(self, t):
        return path_time(t).clone()

    def dalpha(self, t):
        return torch.full_like(path_time(t), -1.0)

    def dsigma(self, t):
        return torch.ones_like(path_time(t))

    def logsnr(self, t):
        t = path_time(t)
        return 2.0 * (torch.log1p(-t) - torch.log(t))

    def t_from_logsnr(self, logsnr):
        return torch.sigmoid(-0.5 * path_logsnr(logsnr))


_FACTORIES: dict[str, Callable[..., GaussianPath]] = {
    "vp-linear": VPLinear,
    "vp-cosine": VPCosine,
    "ve": VE,
    "edm": EDM,
    "linear": Linear,
}


def get(name: str | GaussianPath, **kwargs) -> GaussianPath:
    """Build a path by name: one of ``vp-linear``, ``vp-cosine``, ``ve``, ``edm``, ``linear``.

    Keyword arguments go to the family's constructor (e.g. ``get("ve", sigma_max=20.0)``).
    A path object is returned unchanged.
    """
    return _get(name, "path", **kwargs)


def _get(name, argument: str, **kwargs) -> GaussianPath:
    """:func:`get`, with errors naming ``argument`` (``path``, or ``src``/``dst`` of :func:`retime`)."""
    if isinstance(name, GaussianPath):
        if kwargs:
            raise ValueError(f"{argument}: keyword arguments only apply when building a path by name")
        return name
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be one of {', '.join(NAMES)} or a GaussianPath; got "
                        f"{type(name).__name__}")
    factory = _FACTORIES[_checks.choice(argument, name, NAMES)]
    allowed = tuple(inspect.signature(factory).parameters)
    extra = sorted(set(kwargs) - set(allowed))
    if extra:
        raise TypeError(f"path {name!r} takes the parameters {', '.join(allowed) or 'none'}; got "
                        f"{', '.join(extra)}")
    return factory(**kwargs)


def retime(src, dst, t) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-time path ``src`` at ``t`` as path ``dst``: the time ``t'`` at which ``dst`` has the same
    logSNR, and the scale ``c = alpha_dst(t') / alpha_src(t)`` with ``x^dst_{t'} = c x^src_t`` in law
    (and sample by sample for the same ``x0`` and ``eps``; Kingma et al. 2021, Sec. 3).

    ``t`` must lie in ``[0, 1]``; ``t'`` is above 1 where ``dst`` never reaches ``src``'s logSNR."""
    src, dst = _get(src, "src"), _get(dst, "dst")
    check_time(t)
    t = as_time(t)
    t_dst = dst.t_from_logsnr(src.logsnr(t))
    return t_dst, dst.alpha(t_dst) / src.alpha(t)


def _validate_grid(ts: torch.Tensor) -> torch.Tensor:
    if ts.dim() != 1 or ts.numel() < 2:
        raise ValueError(f"grid must be a 1-D tensor of at least 2 t values; got shape {tuple(ts.shape)}")
    if ts.numel() > MAX_STEPS + 1:
        raise ValueError(f"grid must have at most {MAX_STEPS + 1} t values; got {ts.numel()}")
    if not ts.is_floating_point():
        raise TypeError(f"grid must be a floating-point tensor of t values; got dtype {ts.dtype}")
    cpu = ts.detach().cpu()
    _checks.finite("grid", cpu)
    if bool((cpu < 0).any() or (cpu > 1).any()):
        raise ValueError("grid values must lie in [0, 1] (t = 0 is data, t = 1 the prior)")
    if not bool((cpu[1:] < cpu[:-1]).all()):
        raise ValueError("grid must be strictly decreasing (from the prior towards the data)")
    return ts


def grid(grid, steps: int | None, path: GaussianPath | str, *, dtype=torch.float64, device=None,
         logsnr_min: float = LOGSNR_MIN, logsnr_max: float = LOGSNR_MAX, rho: float = 7.0
         ) -> torch.Tensor:
    """A decreasing grid of ``steps + 1`` times from the prior towards the data, ending at 0.

    * ``"uniform"``: uniform in ``t`` from the path's start to 0 (``t_start`` is 1 on every path
      but ``linear``, where logSNR(1) = -inf and the grids start where logSNR = -20);
    * ``"logsnr"``: ``steps`` points uniform in logSNR from the path's start to ``logsnr_max``,
      then ``t = 0`` (the step that lands on the data) (Lu et al. 2022, DPM-Solver, Sec. 3.3);
    * ``"karras"``: ``steps`` points of EDM's schedule
      ``(s_max^(1/rho) + i/(n-1) (s_min^(1/rho) - s_max^(1/rho)))^rho`` in ``s = sigma/alpha``,
      then ``t = 0`` (Karras et al. 2022, eq. 5);
    * a 1-D tensor: validated (strictly decreasing, within ``[0, 1]``) and returned as it is.

    Re-timing through logSNR means a named grid picks the same noise levels on every path.
    ``steps`` is an integer in ``[1, MAX_STEPS]``; ``rho`` a real in ``RHO_RANGE``; the logSNR
    ends are finite, ``logsnr_max <= MAX_LOGSNR``.
    """
    path = get(path)
    if isinstance(grid, torch.Tensor):
        return _validate_grid(grid)
    if not isinstance(grid, str):
        raise TypeError(f"grid must be one of {', '.join(GRIDS)} or a decreasing tensor; got "
                        f"{type(grid).__name__}")
    _checks.choice("grid", grid, GRIDS)
    if steps is None:
        raise TypeError(f"steps must be an integer in [1, {MAX_STEPS}] for a named grid; got None")
    steps = _checks.integer("steps", steps, 1, MAX_STEPS)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating-point torch.dtype; got {dtype!r}")
    logsnr_min = _checks.real("logsnr_min", logsnr_min)
    logsnr_max = _checks.real("logsnr_max", logsnr_max, high=MAX_LOGSNR)
    rho = _checks.real("rho", rho, *RHO_RANGE)
    t0 = path.t_start
    if grid == "uniform":
        return torch.linspace(t0, 0.0, steps + 1, dtype=dtype, device=device)
    hi = max(float(path.logsnr(t0)), logsnr_min)
    if not logsnr_max > hi:
        raise ValueError(f"logsnr_max must exceed the path's start logSNR {hi:.3g}; got {logsnr_max}")
    if grid == "logsnr":
        lam = torch.linspace(hi, logsnr_max, steps, dtype=torch.float64)
    else:
        s_max, s_min = math.exp(-0.5 * hi), math.exp(-0.5 * logsnr_max)
        ramp = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
        s = (s_max ** (1 / rho) + ramp * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho
        lam = -2.0 * torch.log(s)
    ts = path.t_from_logsnr(lam)
    ts[0] = t0
    if not bool((ts[1:] < ts[:-1]).all() and ts[-1] > 0):
        raise ValueError(f"steps={steps} is too many for this path's logSNR range: neighbouring "
                         f"t values of the {grid!r} grid coincide in float64")
    ts = torch.cat([ts, torch.zeros(1, dtype=torch.float64)])
    return ts.to(dtype=dtype, device=device)
