"""The three losses as one weighted x0 loss; their minimisers coincide on Gaussian data."""

import numpy as np
import pytest
import torch

from diffkit import analytic, losses, paths

F64 = torch.float64


@pytest.mark.parametrize("name", paths.NAMES)
@pytest.mark.parametrize("view", losses.VIEWS)
def test_native_losses_equal_the_weighted_x0_loss(name, view):
    """DDPM's eps loss, DSM and CFM are each w(t) ||D - x0||^2 for any model D."""
    p = paths.get(name)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(64, 2, generator=gen, dtype=F64)
    eps = torch.randn(64, 2, generator=gen, dtype=F64)
    t = 0.02 + 0.96 * torch.rand(64, generator=gen, dtype=F64)
    model = lambda x, t: 0.7 * x - 0.2 * torch.tanh(x) + paths.expand(t, x) * 0.1  # noqa: E731  an arbitrary model
    lhs = losses.native_loss(model, x0, p, view, t, eps)
    rhs = losses.x0_loss(model, x0, p, view, t=t, eps=eps)
    torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-12)


def test_flow_weight_on_linear_path_is_inverse_t_squared():
    t = torch.tensor([0.1, 0.5, 0.9], dtype=F64)
    torch.testing.assert_close(losses.weight("flow", t, "linear"), 1 / t**2)
    torch.testing.assert_close(losses.weight("score", t, "linear"), ((1 - t) / t) ** 2)


@pytest.mark.parametrize("name", ["vp-linear", "linear"])
def test_minimisers_of_the_three_losses_coincide(name):
    """Minimise each view's expected loss (exact in x0 and eps, Gauss-Legendre in t) over the
    Gaussian-denoiser family; all three recover the data's mean and covariance."""
    data = analytic.Gaussian(torch.tensor([1.0, -2.0], dtype=F64), torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=F64))
    p = paths.get(name)
    t_lo, t_hi = 0.05, 0.95
    nodes, wq = np.polynomial.legendre.leggauss(24)
    ts = torch.tensor(t_lo + (t_hi - t_lo) * (nodes + 1) / 2, dtype=F64)
    wq = torch.tensor(wq * (t_hi - t_lo) / 2, dtype=F64)
    found = {}
    for view in losses.VIEWS:
        w = losses.weight(view, ts, p) * wq
        w = w / w.sum()
        m_hat = torch.zeros(2, dtype=F64, requires_grad=True)
        l_hat = torch.eye(2, dtype=F64).clone().requires_grad_(True)
        opt = torch.optim.LBFGS([m_hat, l_hat], max_iter=500, tolerance_grad=1e-14, tolerance_change=1e-16,
                                line_search_fn="strong_wolfe")

        def closure(opt=opt, m_hat=m_hat, l_hat=l_hat, w=w):
            opt.zero_grad()
            c_hat = l_hat @ l_hat.T + 1e-6 * torch.eye(2, dtype=F64)
            loss = (w * data.denoising_error(m_hat, c_hat, ts, p)).sum()
            loss.backward()
            return loss

        for _ in range(3):
            opt.step(closure)
        c_hat = (l_hat @ l_hat.T + 1e-6 * torch.eye(2, dtype=F64)).detach()
        found[view] = (m_hat.detach(), c_hat)
        torch.testing.assert_close(m_hat.detach(), data.mean, atol=1e-5, rtol=0)
        torch.testing.assert_close(c_hat, data.cov, atol=1e-5, rtol=0)
    for view in ("score", "flow"):   # and therefore with each other
        torch.testing.assert_close(found[view][0], found["variational"][0], atol=2e-5, rtol=0)
        torch.testing.assert_close(found[view][1], found["variational"][1], atol=2e-5, rtol=0)


def test_variational_loss_of_exact_denoiser_is_the_exact_elbo_diffusion_term():
    """Monte Carlo of the weighted x0 loss (variational view) over t ~ U[t_min, t_max] equals the
    closed-form diffusion term of the exact ELBO (analytic.Gaussian.elbo)."""
    g = analytic.Gaussian(torch.tensor([0.5, -1.0], dtype=F64), torch.tensor([[1.0, 0.3], [0.3, 0.4]], dtype=F64))
    p = paths.get("vp-cosine")
    t_min, t_max = 0.02, 1.0
    gen = torch.Generator().manual_seed(0)
    x0 = g.sample(400000, generator=gen)
    t, eps, x_t = losses.draw(x0, p, gen, t_min=t_min, t_max=t_max)
    per = losses.weight("variational", t, p) * ((g.denoiser(p)(x_t, t) - x0) ** 2).sum(1) * (t_max - t_min)
    exact = g.elbo(x0, p, t_min=t_min, t_max=t_max)["diffusion"].mean()
    se = per.std() / len(per) ** 0.5
    assert abs(float(per.mean() - exact)) < 4 * float(se)
    assert float(se) < 0.01 * float(exact)


def test_unknown_view():
    with pytest.raises(ValueError, match="view must be one of"):
        losses.weight("elbo", 0.5, "ve")


def test_denoising_error_is_the_posterior_variance_at_the_truth_and_matches_monte_carlo():
    data = analytic.Gaussian(torch.tensor([0.5, -1.0], dtype=F64), torch.tensor([[1.0, 0.3], [0.3, 0.4]], dtype=F64))
    p = paths.get("vp-linear")
    t = torch.tensor([0.1, 0.5, 0.9], dtype=F64)
    # at the truth: tr of the posterior covariance S - alpha^2 S (alpha^2 S + sigma^2 I)^-1 S
    eye = torch.eye(2, dtype=F64)
    post = torch.stack([data.cov - p.alpha(ti) ** 2 * data.cov @ torch.linalg.inv(p.alpha(ti) ** 2 * data.cov + p.sigma(ti) ** 2 * eye) @ data.cov for ti in t])
    torch.testing.assert_close(data.denoising_error(data.mean, data.cov, t, p), post.diagonal(dim1=-2, dim2=-1).sum(-1))
    # a wrong model, by Monte Carlo
    m_hat, c_hat = torch.tensor([0.0, 0.0], dtype=F64), torch.tensor([[0.5, 0.0], [0.0, 2.0]], dtype=F64)
    model = analytic.Gaussian(m_hat, c_hat).denoiser(p)
    gen = torch.Generator().manual_seed(0)
    x0 = data.sample(200000, generator=gen)
    eps = torch.randn(x0.shape, generator=gen, dtype=F64)
    tt = torch.tensor(0.5, dtype=F64)
    err = ((model(p.alpha(tt) * x0 + p.sigma(tt) * eps, tt) - x0) ** 2).sum(1)
    exact = data.denoising_error(m_hat, c_hat, tt, p)[0]
    assert abs(float(err.mean() - exact)) < 4 * float(err.std()) / len(err) ** 0.5
