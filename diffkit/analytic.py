"""Exact oracles: Gaussian and Gaussian-mixture data on any Gaussian path.

For data ``x0 ~ N(m, S)`` and ``x_t = alpha x0 + sigma eps`` everything is closed form. In the
eigenbasis ``S = U diag(lam) U^T`` each coordinate ``z = U^T (x - alpha m)`` is independent with
marginal variance ``v(t) = alpha^2 lam + sigma^2``, and

* score:     ``grad log p_t(x) = -U (z / v)``
* denoiser:  ``D(x, t) = E[x0 | x_t = x] = m + U (alpha lam z / v)``  (Tweedie; Efron 2011)
* velocity:  ``dx/dt = alpha' m + U ((alpha alpha' lam + sigma sigma') z / v)``, the probability-flow
  ODE drift (Song et al. 2021, eq. 13) and the flow-matching velocity (Lipman et al. 2022)
* flow map:  ``x_t = alpha_t m + U (sqrt(v_t / v_s) z_s)``, the exact solution of that ODE.

A mixture's score, denoiser and velocity are the component ones weighted by the posterior
responsibilities ``r_k(x, t)`` (each is affine in the component's ``p_t``-weighted average).

Both classes share one vectorised implementation over stacked components; a :class:`Gaussian`
is a mixture of one component with a few extra exact quantities (flow map, ELBO terms).
"""

from __future__ import annotations

import math

import torch

from . import _checks
from .paths import GaussianPath, as_time, check_time, get
from .samplers import (
    law as _law,  # one direction: the oracles read runs; samplers never import them
)
from .samplers.sample import resolve_path

__all__ = ["Gaussian", "GaussianMixture", "w2_gaussian", "kl_gaussian", "sqrtm_psd", "sampler_law",
           "sampler_moments", "affine_map", "run_moments", "denoiser_moments"]

LOG_2PI = math.log(2.0 * math.pi)

#: the most samples one call of ``sample`` draws (``MAX_SAMPLES * d`` numbers are allocated)
MAX_SAMPLES = 10**7


def _as_float_tensor(value, name: str) -> torch.Tensor:
    """A finite floating-point tensor (integers become float64); ``TypeError``/``ValueError``
    naming ``name`` otherwise."""
    return _checks.tensor(name, value, floating=True, convert=True)


#: dtypes whose linear algebra (``eigh``, ``cholesky``) torch runs; others are lifted to float64
_LINALG_DTYPES = (torch.float32, torch.float64)


def _linalg_dtype(dtype: torch.dtype) -> torch.dtype:
    """Where a decomposition of a ``dtype`` matrix is computed: float16/bfloat16 in float64."""
    return dtype if dtype in _LINALG_DTYPES else torch.float64


def _check_cov(cov: torch.Tensor, d: int, name: str = "cov") -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a symmetric positive-definite ``[d, d]`` matrix; return its eigenpairs in its own
    dtype (computed in float64 for float16/bfloat16, whose ``eigh`` torch does not provide)."""
    if cov.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}) to match the mean; got {tuple(cov.shape)}")
    work = cov.to(_linalg_dtype(cov.dtype))
    scale = work.abs().max().clamp_min(1.0)
    if not torch.allclose(work, work.T, atol=1e-10 * float(scale), rtol=1e-8):
        raise ValueError(f"{name} must be symmetric")
    evals, evecs = torch.linalg.eigh(0.5 * (work + work.T))
    evals, evecs = evals.to(cov.dtype), evecs.to(cov.dtype)
    if not bool((evals > 0).all()):
        raise ValueError(f"{name} must be positive definite (in {cov.dtype}); smallest eigenvalue "
                         f"{float(evals.min()):.3g}")
    return evals, evecs


class _Components:
    """Stacked Gaussian components: log-weights ``[K]``, means ``[K, d]``, eigenpairs of the
    covariances ``[K, d]`` and ``[K, d, d]``. Every oracle formula is written here once."""

    def __init__(self, log_weights, means, evals, evecs):
        self.log_weights, self.means, self.evals, self.evecs = log_weights, means, evals, evecs
        self.dim = means.shape[1]
        self._cast_cache: dict = {}

    # -- dtype / device ---------------------------------------------------------------------
    def _params(self, like: torch.Tensor):
        key = (like.dtype, like.device)
        if key not in self._cast_cache:
            self._cast_cache[key] = tuple(
                p.to(dtype=like.dtype, device=like.device)
                for p in (self.log_weights, self.means, self.evals, self.evecs)
            )
        return self._cast_cache[key]

    def _check_x(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        """A finite floating-point ``[n, d]`` tensor (an array is read in the oracle's dtype);
        finiteness is checked on the CPU only, so a sampling loop on an accelerator never waits."""
        if not isinstance(x, torch.Tensor):
            x = _checks.tensor(name, x, convert=True).to(self.means.dtype)
        x = _checks.tensor(name, x, floating=True, sync=False)
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{name} must have shape [n, {self.dim}]; got {tuple(x.shape)}")
        return x

    # -- the component geometry at time t ----------------------------------------------------
    def _geometry(self, x, t, path, derivatives=False):
        """Eigen-coordinates ``z [K,n,d]``, variances ``v [K,1 or n,d]`` and the path coefficients.

        Components lead the layout so that every product is one batched matmul."""
        path = get(path)
        x = self._check_x(x)
        check_time(t)
        logw, means, evals, evecs = self._params(x)
        t = as_time(t, like=x)
        if t.dim() > 1 or (t.dim() == 1 and t.shape[0] not in (1, x.shape[0])):
            raise ValueError(f"t must be a scalar or a [n] tensor with n = {x.shape[0]}; got shape "
                             f"{tuple(t.shape)}")
        if derivatives and t.device.type == "cpu" and bool((t == 0).any()):
            if not math.isfinite(float(path.dsigma(torch.tensor(0.0, dtype=torch.float64)))):
                raise ValueError(f"t must be > 0 here: sigma'(t) of {path.name} is infinite at t = 0")
        a, s = path.alpha(t), path.sigma(t)
        shape = (1, -1, 1) if t.dim() == 1 else ()
        a3, s3 = a.reshape(shape), s.reshape(shape)
        diff = x[None] - a3 * means[:, None, :]                        # [K, n, d]
        z = torch.matmul(diff, evecs)                                  # eigen-coordinates
        v = a3 * a3 * evals[:, None, :] + s3 * s3                      # [K, 1 or n, d]
        out = dict(z=z, v=v, a=a3, s=s3, logw=logw, means=means, evals=evals, evecs=evecs)
        if derivatives:
            out["da"] = path.dalpha(t).reshape(shape)
            out["ds"] = path.dsigma(t).reshape(shape)
        return out

    @staticmethod
    def _component_log_prob(g):
        d = g["z"].shape[-1]
        return -0.5 * (d * LOG_2PI + torch.log(g["v"]).sum(-1) + (g["z"] ** 2 / g["v"]).sum(-1))  # [K, n]

    def _responsibilities(self, g):
        return torch.softmax(g["logw"][:, None] + self._component_log_prob(g), dim=0)   # [K, n]

    @staticmethod
    def _back(coords, evecs):
        """``U @ coords`` for every component: ``[K,n,d]`` -> ``[K,n,d]``."""
        return torch.matmul(coords, evecs.transpose(1, 2))

    def _mix(self, g, per_component):
        if per_component.shape[0] == 1:
            return per_component[0]
        r = self._responsibilities(g)
        return (r[..., None] * per_component).sum(0)

    # -- public oracle quantities ------------------------------------------------------------
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density of the data (``t = 0``) at ``x [n, d]``: ``[n]``."""
        return self.marginal_log_prob(x, 0.0, "linear")

    def marginal_log_prob(self, x: torch.Tensor, t, path) -> torch.Tensor:
        """Exact ``log p_t(x)`` of the marginal at time ``t`` on ``path``: ``[n]``."""
        g = self._geometry(x, t, path)
        return torch.logsumexp(g["logw"][:, None] + self._component_log_prob(g), dim=0)

    def score(self, x: torch.Tensor, t, path) -> torch.Tensor:
        """Exact score ``grad_x log p_t(x)`` of the marginal at time ``t``."""
        g = self._geometry(x, t, path)
        return self._mix(g, -self._back(g["z"] / g["v"], g["evecs"]))

    def denoise(self, x: torch.Tensor, t, path) -> torch.Tensor:
        """Exact denoiser ``E[x0 | x_t = x]`` (Tweedie's formula, closed form)."""
        g = self._geometry(x, t, path)
        coords = g["a"] * g["evals"][:, None, :] * g["z"] / g["v"]
        return self._mix(g, g["means"][:, None, :] + self._back(coords, g["evecs"]))

    def denoiser(self, path) -> "ExactDenoiser":
        """The exact denoiser on ``path`` as a callable ``D(x, t)``: the samplers' oracle."""
        return ExactDenoiser(self, get(path))

    def velocity(self, x: torch.Tensor, t, path) -> torch.Tensor:
        """Exact probability-flow (= flow-matching) velocity ``dx/dt`` at ``(x, t)``."""
        g = self._geometry(x, t, path, derivatives=True)
        rate = (g["a"] * g["da"] * g["evals"][:, None, :] + g["s"] * g["ds"]) / g["v"]
        return self._mix(g, g["da"] * g["means"][:, None, :] + self._back(rate * g["z"], g["evecs"]))

    def _sample_components(self, n, generator, which):
        means, evals, evecs = self.means, self.evals, self.evecs
        z = torch.randn(n, self.dim, generator=generator, dtype=means.dtype, device=means.device)
        scaled = z * evals[which].sqrt()
        return means[which] + torch.matmul(evecs[which], scaled[:, :, None])[..., 0]


class ExactDenoiser:
    """``D(x, t)`` for an oracle on a path; also exposes the oracle and the path."""

    def __init__(self, oracle: _Components, path: GaussianPath):
        self.oracle, self.path = oracle, path

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        return self.oracle.denoise(x, t, self.path)

    def __repr__(self):
        return f"ExactDenoiser({type(self.oracle).__name__}, {self.path!r})"


class Gaussian(_Components):
    """Gaussian data ``N(mean, cov)``: every quantity of every view in closed form.

    ``mean`` is ``[d]``, ``cov`` a symmetric positive-definite ``[d, d]`` matrix. Computations run
    in the dtype of their input (float64 for exact checks).
    """

    def __init__(self, mean, cov):
        mean = _as_float_tensor(mean, "mean")
        cov = _as_float_tensor(cov, "cov").to(dtype=mean.dtype, device=mean.device)
        if mean.dim() != 1 or mean.shape[0] < 1:
            raise ValueError(f"mean must be a 1-D tensor [d] with d >= 1; got shape {tuple(mean.shape)}")
        evals, evecs = _check_cov(cov, mean.shape[0])
        self.mean, self.cov = mean, 0.5 * (cov + cov.T)
        super().__init__(torch.zeros(1, dtype=mean.dtype, device=mean.device), mean[None],
                         evals[None], evecs[None])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``[n, d]`` (``n`` an integer in ``[0, MAX_SAMPLES]``)."""
        n = _checks.integer("n", n, 0, MAX_SAMPLES)
        which = torch.zeros(n, dtype=torch.long, device=self.mean.device)
        return self._sample_components(n, generator, which)

    def marginal(self, t, path) -> "Gaussian":
        """The exact law of ``x_t``: ``N(alpha m, alpha^2 S + sigma^2 I)`` (``t`` a scalar)."""
        path = get(path)
        check_time(t)
        t = as_time(t, like=self.mean)
        if t.dim() != 0:
            raise ValueError("t must be a scalar for marginal()")
        a, s = path.alpha(t), path.sigma(t)
        eye = torch.eye(self.dim, dtype=self.mean.dtype, device=self.mean.device)
        return Gaussian(a * self.mean, a * a * self.cov + s * s * eye)

    def flow_map(self, x: torch.Tensor, s, t, path) -> torch.Tensor:
        """Exact probability-flow map from time ``s`` to time ``t``:
        ``x_t = alpha_t m + U diag(sqrt(v_t / v_s)) U^T (x_s - alpha_s m)``."""
        path = get(path)
        check_time(s, "s")
        check_time(t, "t")
        gs = self._geometry(x, s, path)
        _, means, evals, evecs = self._params(x)
        tt = as_time(t, like=x)
        shape = (1, -1, 1) if tt.dim() == 1 else ()
        at, st = path.alpha(tt).reshape(shape), path.sigma(tt).reshape(shape)
        vt = at * at * evals[:, None, :] + st * st
        out = at * means[:, None, :] + self._back(torch.sqrt(vt / gs["v"]) * gs["z"], evecs)
        return out[0]

    def elbo(self, x0: torch.Tensor, path, t_min=None, t_max=1.0) -> dict[str, torch.Tensor]:
        """Exact terms of the continuous-time negative ELBO (nats, per data point ``[n]``) of the
        diffusion model whose denoiser is this Gaussian's exact one (Kingma et al. 2021, VDM,
        eq. 14-17):

        * ``prior``: ``KL(q(x_1 | x0) || N(0, sigma_1^2 I)) = SNR(t_max) ||x0||^2 / 2``;
        * ``diffusion``: ``1/2 int_{SNR(t_max)}^{SNR(t_min)} E_eps ||x0 - D(x_t, t)||^2 dSNR``, which in
          the eigenbasis (``y = U^T (x0 - m)``, ``w = SNR lam + 1``) integrates to
          ``1/2 [y^2 / lam (1/w_lo - 1/w_hi) + log(w_hi / w_lo) + 1/w_hi - 1/w_lo]`` per coordinate;
        * ``reconstruction``: ``-E log N(x0; x_{t_min} / alpha, (sigma/alpha)^2 I)
          = d/2 (log 2 pi - logsnr(t_min) + 1)``.

        ``total`` is their sum and ``bpd`` the total in bits per dimension. As ``t_min -> 0`` and
        ``t_max -> 1`` on a path whose SNR(1) -> 0, the average total tends to the entropy
        ``E[-log p(x0)]``: the bound is tight for the exact denoiser.
        """
        path = get(path)
        x0 = self._check_x(x0, "x0")
        if t_min is None:
            from .paths import LOGSNR_MAX

            t_min = float(path.t_from_logsnr(LOGSNR_MAX))
        t_min, t_max = _checks.real("t_min", t_min), _checks.real("t_max", t_max)
        check_time(t_min, "t_min")
        check_time(t_max, "t_max")
        if not 0.0 < float(t_min) < float(t_max):
            raise ValueError(f"need 0 < t_min < t_max; got t_min={t_min}, t_max={t_max}")
        _, means, evals, evecs = self._params(x0)
        lam, u = evals[0], evecs[0]
        l_lo = path.logsnr(as_time(t_max, like=x0))     # low SNR end
        l_hi = path.logsnr(as_time(t_min, like=x0))     # high SNR end
        snr_lo, snr_hi = torch.exp(l_lo), torch.exp(l_hi)
        y2 = ((x0 - means[0]) @ u) ** 2
        w_lo, w_hi = snr_lo * lam + 1.0, snr_hi * lam + 1.0
        per_coord = y2 / lam * (1.0 / w_lo - 1.0 / w_hi) + torch.log(w_hi / w_lo) + 1.0 / w_hi - 1.0 / w_lo
        diffusion = 0.5 * per_coord.sum(-1)
        prior = 0.5 * snr_lo * (x0 ** 2).sum(-1)
        recon = torch.full_like(diffusion, 0.5 * self.dim) * (LOG_2PI - l_hi + 1.0)
        total = prior + diffusion + recon
        return dict(prior=prior, diffusion=diffusion, reconstruction=recon, total=total,
                    bpd=total / (self.dim * math.log(2.0)))

    def denoising_error(self, m_hat: torch.Tensor, cov_hat: torch.Tensor, t, path) -> torch.Tensor:
        """``E ||D_hat(x_t, t) - x0||^2`` for this Gaussian's data and the exact denoiser of another
        Gaussian ``N(m_hat, cov_hat)``, in closed form (differentiable in ``m_hat``, ``cov_hat``).

        ``D_hat(x) = m_hat + B (x - alpha m_hat)`` with ``B = alpha S_hat (alpha^2 S_hat + sigma^2 I)^-1``
        is affine in ``x``, so with ``R = alpha B - I`` the error is
        ``|R (m - m_hat)|^2 + tr(R S R^T) + sigma^2 tr(B B^T)``; it is minimal, and equal to the
        posterior variance, exactly at ``(m_hat, S_hat) = (m, S)``. ``t``: scalar or ``[T]`` -> ``[T]``.
        """
        path = get(path)
        m_hat = _checks.tensor("m_hat", m_hat, floating=True)
        cov_hat = _checks.tensor("cov_hat", cov_hat, floating=True)
        if m_hat.shape != (self.dim,) or cov_hat.shape != (self.dim, self.dim):
            raise ValueError(f"m_hat and cov_hat must have shapes ({self.dim},) and ({self.dim}, "
                             f"{self.dim}); got {tuple(m_hat.shape)} and {tuple(cov_hat.shape)}")
        check_time(t)
        t = as_time(t, like=self.mean).reshape(-1)
        a, s = path.alpha(t)[:, None, None], path.sigma(t)[:, None, None]
        eye = torch.eye(self.dim, dtype=self.mean.dtype, device=self.mean.device)
        b = a * cov_hat @ torch.linalg.inv(a * a * cov_hat + s * s * eye)
        r = a * b - eye
        bias = (r @ (self.mean - m_hat)[:, None])[..., 0]
        spread = (r @ self.cov @ r.mT).diagonal(dim1=-2, dim2=-1).sum(-1)
        return (bias**2).sum(-1) + spread + (s * s)[:, 0, 0] * (b * b).sum((-2, -1))

    def _measurement(self, A, y, sigma_y):
        A = _as_float_tensor(A, "A").to(self.mean)
        y = _as_float_tensor(y, "y").to(self.mean)
        if A.dim() != 2 or A.shape[1] != self.dim:
            raise ValueError(f"A must have shape [p, {self.dim}]; got {tuple(A.shape)}")
        if y.shape[-1] != A.shape[0]:
            raise ValueError(f"y must end in p = {A.shape[0]} (A's rows); got {tuple(y.shape)}")
        if not float(sigma_y) > 0:
            raise ValueError(f"sigma_y must be positive; got {sigma_y}")
        return A, y, float(sigma_y)

    def posterior(self, A, y, sigma_y: float) -> "Gaussian":
        """The exact posterior ``p(x0 | y)`` for ``y = A x0 + sigma_y n``, ``n ~ N(0, I)``, ``y [p]``:
        ``N(P (S^-1 m + A^T y / sigma_y^2), P)`` with ``P = (S^-1 + A^T A / sigma_y^2)^-1``."""
        A, y, sy = self._measurement(A, y, sigma_y)
        lam, u = self.evals[0], self.evecs[0]
        prec = (u / lam) @ u.T + A.T @ A / sy**2
        cov = torch.linalg.inv(0.5 * (prec + prec.T))
        mean = cov @ ((u / lam) @ u.T @ self.mean + A.T @ y / sy**2)
        return Gaussian(mean, 0.5 * (cov + cov.T))

    def measurement_score(self, x: torch.Tensor, t, path, A, y, sigma_y: float) -> torch.Tensor:
        """Exact ``grad_x log p_t(y | x_t = x)`` for ``y = A x0 + sigma_y n`` (``t`` a scalar):
        ``x0 | x_t`` is Gaussian with mean ``D(x, t)`` and covariance ``Sigma = U diag(lam sigma^2 /
        v) U^T``, so ``p_t(y | x) = N(y; A D, A Sigma A^T + sigma_y^2 I)`` and the gradient is
        ``J^T A^T C^-1 (y - A D)`` with ``J = dD/dx = (alpha / sigma^2) Sigma``. Guiding the exact
        denoiser with it gives the exact denoiser of :meth:`posterior` (Bayes at every ``t``)."""
        A, y, sy = self._measurement(A, y, sigma_y)
        path = get(path)
        check_time(t)
        tt = as_time(t, like=x)
        if tt.dim() != 0:
            raise ValueError("t must be a scalar for measurement_score()")
        a, s = path.alpha(tt), path.sigma(tt)
        lam, u = self.evals[0].to(x), self.evecs[0].to(x)
        v = a * a * lam + s * s
        post_cov = (u * (lam * s * s / v)) @ u.T
        jac = (u * (a * lam / v)) @ u.T
        C = A @ post_cov @ A.T + sy**2 * torch.eye(A.shape[0], dtype=x.dtype, device=x.device)
        resid = y - self.denoise(x, tt, path) @ A.T                      # [n, p]
        return torch.linalg.solve(C, resid.T).T @ A @ jac.T

    def entropy(self) -> torch.Tensor:
        """Differential entropy ``E[-log p(x0)] = d/2 (1 + log 2 pi) + 1/2 log det S``."""
        return 0.5 * self.dim * (1.0 + LOG_2PI) + 0.5 * torch.log(self.evals[0]).sum()

    def __repr__(self):
        return f"Gaussian(dim={self.dim}, dtype={self.mean.dtype})"


class GaussianMixture(_Components):
    """A Gaussian mixture ``sum_k w_k N(m_k, S_k)``: exact scores, denoisers and velocities at every
    time, by responsibility-weighting the component oracles.

    ``weights [K]`` (positive; normalised), ``means [K, d]``, ``covs [K, d, d]``; optional
    ``labels [K]``: the class of each component (integers), which makes the mixture a
    class-conditional model: :meth:`conditional`, :meth:`class_posterior`.
    """

    def __init__(self, weights, means, covs, labels=None):
        means = _as_float_tensor(means, "means")
        if means.dim() != 2 or 0 in means.shape:
            raise ValueError(f"means must have shape [K, d] with K, d >= 1; got {tuple(means.shape)}")
        k, d = means.shape
        weights = _as_float_tensor(weights, "weights").to(dtype=means.dtype, device=means.device)
        if weights.shape != (k,):
            raise ValueError(f"weights must have shape [{k}] to match means; got {tuple(weights.shape)}")
        if not bool((weights > 0).all()):
            raise ValueError("weights must be positive")
        covs = _as_float_tensor(covs, "covs").to(dtype=means.dtype, device=means.device)
        if covs.shape != (k, d, d):
            raise ValueError(f"covs must have shape [{k}, {d}, {d}] to match means; got {tuple(covs.shape)}")
        pairs = [_check_cov(covs[i], d, f"covs[{i}]") for i in range(k)]
        self.weights = weights / weights.sum()
        self.means, self.covs = means, 0.5 * (covs + covs.transpose(1, 2))
        super().__init__(torch.log(self.weights), means, torch.stack([p[0] for p in pairs]),
                         torch.stack([p[1] for p in pairs]))
        self.labels = _check_labels(labels, k)

    @property
    def mean(self) -> torch.Tensor:
        """The mixture's mean ``sum_k w_k m_k``."""
        return (self.weights[:, None] * self.means).sum(0)

    @property
    def cov(self) -> torch.Tensor:
        """The mixture's covariance (law of total covariance):
        ``sum_k w_k (S_k + (m_k - m)(m_k - m)^T)``."""
        centred = self.means - self.mean
        outer = centred[:, :, None] * centred[:, None, :]
        return (self.weights[:, None, None] * (self.covs + outer)).sum(0)

    def moment_matched(self) -> Gaussian:
        """The Gaussian with the mixture's mean and covariance."""
        return Gaussian(self.mean, self.cov)

    @property
    def components(self) -> list[Gaussian]:
        return [Gaussian(self.means[i], self.covs[i]) for i in range(len(self.weights))]

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``[n, d]`` (``n`` an integer in ``[0, MAX_SAMPLES]``)."""
        n = _checks.integer("n", n, 0, MAX_SAMPLES)
        which = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return self._sample_components(n, generator, which)

    def marginal(self, t, path) -> "GaussianMixture":
        """The exact law of ``x_t``: the mixture of the component marginals (``t`` a scalar)."""
        path = get(path)
        check_time(t)
        t = as_time(t, like=self.means)
        if t.dim() != 0:
            raise ValueError("t must be a scalar for marginal()")
        a, s = path.alpha(t), path.sigma(t)
        eye = torch.eye(self.dim, dtype=self.means.dtype, device=self.means.device)
        return GaussianMixture(self.weights, a * self.means, a * a * self.covs + s * s * eye,
                               labels=self.labels)

    # -- classes (a labelled mixture) ----------------------------------------------------------
    def _require_labels(self) -> torch.Tensor:
        if self.labels is None:
            raise ValueError("this mixture has no labels; build it with GaussianMixture(..., labels=...)")
        return self.labels

    @property
    def classes(self) -> tuple[int, ...]:
        """The class labels, sorted."""
        return tuple(int(c) for c in torch.unique(self._require_labels()))

    def _class_index(self, c) -> torch.Tensor:
        labels = self._require_labels()
        if isinstance(c, bool) or not isinstance(c, (int, torch.Tensor)) or int(c) not in self.classes:
            raise ValueError(f"c must be one of the classes {self.classes}; got {c!r}")
        return labels == int(c)

    def class_prior(self) -> torch.Tensor:
        """``p(c)`` for each class of :attr:`classes`: ``[C]``."""
        return torch.stack([self.weights[self._class_index(c)].sum() for c in self.classes])

    def conditional(self, c) -> "GaussianMixture":
        """The mixture of class ``c``: ``p(x0 | c)``, its components reweighted to sum to one."""
        keep = self._class_index(c)
        return GaussianMixture(self.weights[keep], self.means[keep], self.covs[keep],
                               labels=self.labels[keep])

    def class_log_posterior(self, x: torch.Tensor, t, path) -> torch.Tensor:
        """Exact ``log p_t(c | x)`` for each class: ``[n, C]`` (columns in :attr:`classes` order).

        ``p_t(c | x) = sum_{k: label_k = c} r_k(x, t)``, the responsibilities of the class's
        components in the marginal at ``t``; differentiable in ``x`` (classifier guidance)."""
        g = self._geometry(x, t, path)
        joint = g["logw"][:, None] + self._component_log_prob(g)               # [K, n]
        total = torch.logsumexp(joint, dim=0)
        per_class = [torch.logsumexp(joint[self._class_index(c)], dim=0) for c in self.classes]
        return torch.stack(per_class, dim=1) - total[:, None]

    def tilted_log_prob(self, x: torch.Tensor, c, scale: float, t=0.0, path="linear") -> torch.Tensor:
        """Unnormalised log-density of the tilted law ``p_t(x | c)^s p_t(x)^(1 - s)`` at ``x``:
        ``s log p_t(x | c) + (1 - s) log p_t(x)`` (``t = 0``: the tilted data law; its score at
        ``t > 0`` is the classifier-free guided field at scale ``s``). ``[n]``."""
        cond = self.conditional(c).marginal_log_prob(x, t, path)
        return scale * cond + (1.0 - scale) * self.marginal_log_prob(x, t, path)

    def class_posterior(self, x: torch.Tensor, t, path) -> torch.Tensor:
        """Exact ``p_t(c | x)``: ``[n, C]``, rows summing to one (``t = 0``: the Bayes classifier)."""
        return self.class_log_posterior(x, t, path).exp()

    def __repr__(self):
        return f"GaussianMixture(K={len(self.weights)}, dim={self.dim}, dtype={self.means.dtype})"


def _check_labels(labels, k: int):
    if labels is None:
        return None
    labels = torch.as_tensor(labels)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integers; got dtype {labels.dtype}")
    if labels.shape != (k,):
        raise ValueError(f"labels must have shape [{k}] (one class per component); got {tuple(labels.shape)}")
    return labels.to(torch.long)


def sqrtm_psd(c: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix (by ``eigh``; float16
    and bfloat16 are computed in float64 and returned in their dtype)."""
    c = _as_float_tensor(c, "c")
    if c.dim() != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"c must be a square matrix [d, d]; got shape {tuple(c.shape)}")
    work = c.to(_linalg_dtype(c.dtype))
    evals, evecs = torch.linalg.eigh(0.5 * (work + work.T))
    if evals.numel() and float(evals.min()) < _psd_floor(evals):
        raise ValueError(f"c must be positive semi-definite; smallest eigenvalue {float(evals.min()):.3g}")
    return ((evecs * evals.clamp_min(0).sqrt()) @ evecs.T).to(c.dtype)


def _as_gaussian(p, name):
    """``(mean, cov, dtype)`` of a Gaussian or a ``(mean, cov)`` pair: finite, shapes ``[d]`` and
    ``[d, d]``, symmetric; lifted to float64 where torch has no ``eigh`` (float16/bfloat16), with
    ``dtype`` the caller's, in which the result is returned."""
    if isinstance(p, Gaussian):
        mean, cov = p.mean, p.cov
    elif isinstance(p, (tuple, list)) and len(p) == 2:
        mean, cov = _as_float_tensor(p[0], f"{name}[0]"), _as_float_tensor(p[1], f"{name}[1]")
    else:
        raise TypeError(f"{name} must be an analytic.Gaussian or a (mean, cov) pair; got {type(p).__name__}")
    if mean.dim() != 1 or cov.shape != (mean.shape[0], mean.shape[0]):
        raise ValueError(f"{name} must be a mean [d] and a covariance [d, d]; got shapes "
                         f"{tuple(mean.shape)} and {tuple(cov.shape)}")
    dtype = mean.dtype
    work = _linalg_dtype(torch.promote_types(dtype, cov.dtype))
    mean, cov = mean.to(work), cov.to(device=mean.device, dtype=work)
    scale = float(cov.abs().max().clamp_min(1.0)) if cov.numel() else 1.0
    if not torch.allclose(cov, cov.T, atol=1e-6 * scale, rtol=1e-6):
        raise ValueError(f"{name}'s covariance must be symmetric")
    return mean, 0.5 * (cov + cov.T), dtype


def _psd_floor(evals: torch.Tensor) -> float:
    """How negative a round-off eigenvalue of a positive semi-definite matrix may be."""
    eps = torch.finfo(evals.dtype).eps
    return -1e3 * eps * max(1.0, float(evals.abs().max()))


def w2_gaussian(p, q) -> torch.Tensor:
    """Wasserstein-2 distance between two Gaussians (Dowson & Landau 1982; Givens & Shortt 1984):

    ``W2^2 = |m_p - m_q|^2 + tr(S_p + S_q - 2 (S_p^1/2 S_q S_p^1/2)^1/2)``.

    The trace term is evaluated without cancellation: with ``R = (S_p^1/2 S_q S_p^1/2)^1/2`` and
    ``X = R - S_p``, ``X`` solves the Sylvester equation ``S_p X + X R = S_p^1/2 (S_q - S_p) S_p^1/2``
    and the trace term equals ``||S_p^-1/2 X||_F^2``. So a tiny difference between the laws (a
    sampler's discretisation error at many steps) is measured to float64 precision instead of
    being lost in ``tr S_p + tr S_q - 2 tr R``. ``p`` must have a positive-definite covariance,
    ``q`` a positive semi-definite one (a degenerate law, e.g. a sampler's, is allowed). float16
    and bfloat16 inputs are computed in float64; the result has ``p``'s dtype.
    """
    mp, cp, dtype = _as_gaussian(p, "p")
    mq, cq, _ = _as_gaussian(q, "q")
    if mp.shape != mq.shape:
        raise ValueError(f"p and q must have the same dimension; got {tuple(mp.shape)} and {tuple(mq.shape)}")
    cq, mq = cq.to(cp.dtype), mq.to(mp.dtype)
    lam, u = torch.linalg.eigh(cp)
    if not bool((lam > 0).all()):
        raise ValueError(f"p's covariance must be positive definite; smallest eigenvalue {float(lam.min()):.3g}")
    q_evals = torch.linalg.eigvalsh(cq)
    q_min = float(q_evals.min())
    if q_min < _psd_floor(q_evals):
        raise ValueError(f"q's covariance must be positive semi-definite; smallest eigenvalue {q_min:.3g}")
    sp = (u * lam.sqrt()) @ u.T
    sp_inv = (u / lam.sqrt()) @ u.T
    middle = sp @ cq @ sp
    r_vals, r_vecs = torch.linalg.eigh(0.5 * (middle + middle.T))
    r_vals = r_vals.clamp_min(0).sqrt()
    rhs = sp @ (cq - cp) @ sp
    rhs = 0.5 * (rhs + rhs.T)
    # solve S_p X + X R = rhs in the eigenbases of S_p (values lam) and R (values r_vals)
    x_tilde = (u.T @ rhs @ r_vecs) / (lam[:, None] + r_vals[None, :])
    x = u @ x_tilde @ r_vecs.T
    cov_term = ((sp_inv @ x) ** 2).sum()
    mean_term = ((mp - mq) ** 2).sum()
    return torch.sqrt((mean_term + cov_term).clamp_min(0)).to(dtype)


def _cholesky(cov: torch.Tensor, name: str) -> torch.Tensor:
    factor, info = torch.linalg.cholesky_ex(cov)
    if int(info) != 0:
        raise ValueError(f"{name}'s covariance must be positive definite (its Cholesky factorisation "
                         f"fails at column {int(info)})")
    return factor


def kl_gaussian(p, q) -> torch.Tensor:
    """``KL(p || q)`` between Gaussians:
    ``1/2 [tr(S_q^-1 S_p) + (m_q - m_p)^T S_q^-1 (m_q - m_p) - d + log det S_q - log det S_p]``.

    Both covariances must be positive definite; float16 and bfloat16 inputs are computed in
    float64 and the result has ``p``'s dtype."""
    mp, cp, dtype = _as_gaussian(p, "p")
    mq, cq, _ = _as_gaussian(q, "q")
    if mp.shape != mq.shape:
        raise ValueError(f"p and q must have the same dimension; got {tuple(mp.shape)} and {tuple(mq.shape)}")
    mq, cq = mq.to(mp.dtype), cq.to(cp.dtype)
    lq = _cholesky(cq, "q")
    lp = _cholesky(cp, "p")
    d = mp.shape[0]
    a = torch.linalg.solve_triangular(lq, lp, upper=False)
    diff = torch.linalg.solve_triangular(lq, (mq - mp)[:, None], upper=False)
    logdet = 2.0 * (torch.log(torch.diagonal(lq)).sum() - torch.log(torch.diagonal(lp)).sum())
    return (0.5 * ((a**2).sum() + (diff**2).sum() - d + logdet)).to(dtype)


# -- exact laws of runs on Gaussian data -------------------------------------------------------
# A run with an affine denoiser is an affine map of its start and its draws (read generically by
# diffkit.samplers.law); with a Gaussian start its output law is Gaussian, exactly.


def _check_gaussian(data, name="data"):
    if not isinstance(data, Gaussian):
        raise TypeError(f"{name} must be an analytic.Gaussian (its denoiser is affine); got {type(data).__name__}")


def affine_map(solver: str, path, data, steps: int = 10, grid="logsnr", **options):
    """The run of ``solver`` with ``data``'s exact denoiser as an affine map: ``(A, B, b, ts)`` with
    ``x_out = A x_start + B z + b``; ``A`` is ``[d, d]``, ``B`` is ``[d, K d]`` for ``K`` draws of
    shape ``[d]`` (``[d, 0]`` for a deterministic run), ``b`` is ``[d]``, ``ts`` the grid used
    (:func:`diffkit.samplers.law.solver_affine_map`)."""
    _check_gaussian(data)
    path = resolve_path(path)
    return _law.solver_affine_map(solver, path, data.denoiser(path), data.dim, steps, grid,
                                  data.mean.dtype, data.mean.device, **options)


def run_moments(run, start) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact mean and covariance of the output of an affine ``run(x_start, noise)`` (see
    :func:`diffkit.samplers.law.read_affine`) started from ``x_start ~ start`` (a :class:`Gaussian`):
    the law of any run with an affine denoiser, e.g. a guided one or an inverse-problem method."""
    _check_gaussian(start, "start")
    A, B, b = _law.read_affine(run, start.dim, start.mean.dtype, start.mean.device)
    return _law.push_forward(A, B, b, start.mean, start.cov)


def sampler_moments(solver: str, path, data, steps: int = 10, grid="logsnr", start=None,
                    **options) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact mean and covariance of ``solver``'s output (see :func:`sampler_law`), also when
    the law is degenerate (e.g. one deterministic step from ``t = 1`` on the ``linear`` path sends
    every start to the data mean): ``A mu + b`` and ``A C A^T + B B^T`` for ``x_start ~ N(mu, C)``.
    ``w2_gaussian(data, sampler_moments(...))`` is then the exact W2 in every case."""
    A, B, b, ts = affine_map(solver, path, data, steps, grid, **options)
    if start is None:
        start = data.marginal(float(ts[0]), resolve_path(path))
    _check_gaussian(start, "start")
    return _law.push_forward(A, B, b, start.mean, start.cov)


def denoiser_moments(solver: str, path, denoiser, start, steps: int = 10, grid="logsnr",
                     **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact mean and covariance of ``solver``'s output with any affine ``denoiser`` (a guided one:
    CFG of Gaussians, the posterior sampler, DPS with a Gaussian's denoiser) from
    ``x_start ~ start`` (a :class:`Gaussian`)."""
    _check_gaussian(start, "start")
    A, B, b, _ = _law.solver_affine_map(solver, resolve_path(path), denoiser, start.dim, steps, grid,
                                        start.mean.dtype, start.mean.device, **options)
    return _law.push_forward(A, B, b, start.mean, start.cov)


def sampler_law(solver: str, path, data, steps: int = 10, grid="logsnr", start=None, **options):
    """The exact law (a :class:`Gaussian`) of ``solver``'s output when it is run with the exact
    denoiser of the Gaussian ``data`` from ``x_start ~ start``.

    ``start`` defaults to the exact marginal of ``data`` at ``ts[0]``: the exact probability-flow map
    would then return ``data`` itself, so ``w2_gaussian(law, data)`` is the solver's pure
    discretisation error (including the final jump from the last grid point to ``t = 0``).
    Deterministic solvers and the stochastic ones (``ddpm``, ``ddim`` with ``eta``,
    ``euler-maruyama``, ``pc``, ``heun`` with ``churn``) are covered; ``adaptive`` is not (its step
    sizes depend on the state).
    """
    return Gaussian(*sampler_moments(solver, path, data, steps, grid, start, **options))

