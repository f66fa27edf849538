"""Conversions between x0, eps, score, v and velocity: round trips and known identities."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffkit import analytic, paths, views


def _gaussian(seed, d=3):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=gen, dtype=torch.float64)
    return analytic.Gaussian(torch.randn(d, generator=gen, dtype=torch.float64), a @ a.T + 0.2 * torch.eye(d, dtype=torch.float64))


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(paths.NAMES), src=st.sampled_from(views.KINDS), dst=st.sampled_from(views.KINDS),
       t=st.floats(0.02, 0.98), seed=st.integers(0, 2**16))
def test_every_conversion_round_trips(name, src, dst, t, seed):
    gen = torch.Generator().manual_seed(seed)
    p = paths.get(name)
    x = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    pred = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    tt = torch.full((4,), t, dtype=torch.float64)
    back = views.convert(views.convert(pred, x, tt, p, src, dst), x, tt, p, dst, src)
    torch.testing.assert_close(back, pred, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name", paths.NAMES)
def test_exact_quantities_are_conversions_of_the_exact_denoiser(name):
    """Tweedie: D = (x + sigma^2 score) / alpha; the flow velocity is the PF-ODE drift."""
    g, p = _gaussian(0), paths.get(name)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t = torch.tensor(0.3, dtype=torch.float64)
    d = g.denoiser(p)(x, t)
    torch.testing.assert_close(views.from_x0("score", d, x, t, p), g.score(x, t, p), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(views.to_x0("score", g.score(x, t, p), x, t, p), d, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(views.from_x0("velocity", d, x, t, p), g.velocity(x, t, p), rtol=1e-10, atol=1e-12)
    # probability-flow ODE drift f x - g^2/2 score with f = alpha'/alpha, g^2 = d sigma^2/dt - 2 f sigma^2
    f = p.dalpha(t) / p.alpha(t)
    g2 = 2 * p.sigma(t) * p.dsigma(t) - 2 * f * p.sigma(t) ** 2
    torch.testing.assert_close(f * x - 0.5 * g2 * g.score(x, t, p), g.velocity(x, t, p), rtol=1e-10, atol=1e-12)


def test_v_prediction_is_salimans_ho_on_vp():
    p = paths.get("vp-cosine")
    gen = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 5, 2, generator=gen, dtype=torch.float64)
    t = torch.tensor(0.4, dtype=torch.float64)
    x = p.alpha(t) * x0 + p.sigma(t) * eps
    v = views.from_x0("v", x0, x, t, p)
    torch.testing.assert_close(v, p.alpha(t) * eps - p.sigma(t) * x0)
    torch.testing.assert_close(p.alpha(t) * x - p.sigma(t) * v, x0)  # x0 = alpha x - sigma v on VP


def test_as_denoiser_wraps_any_prediction():
    g, p = _gaussian(2), paths.get("linear")
    for kind in views.KINDS:
        net = lambda x, t, kind=kind: views.from_x0(kind, g.denoiser(p)(x, t), x, t, p)  # noqa: E731
        d = views.as_denoiser(net, kind, p)
        x = torch.randn(3, 3, dtype=torch.float64)
        t = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
        torch.testing.assert_close(d(x, t), g.denoiser(p)(x, t), rtol=1e-10, atol=1e-12)


def test_unknown_kind_is_a_value_error():
    with pytest.raises(ValueError, match="kind must be one of"):
        views.to_x0("noise", torch.zeros(1, 1), torch.zeros(1, 1), 0.5, "ve")
    with pytest.raises(ValueError, match="dst must be one of"):
        views.convert(torch.zeros(1, 1), torch.zeros(1, 1), 0.5, "ve", "eps", "flow")
