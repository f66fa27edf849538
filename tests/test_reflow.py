"""diffkit.reflow: the coupling of an exact Gaussian flow is its exact flow map; flow matching on a
coupling learns the coupling's velocity; straightness is zero on straight lines and a hand-computed
number on a bent one."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from diffkit import analytic, reflow

F64 = torch.float64


def test_couple_follows_the_exact_flow_map_of_a_gaussian(one_thread):
    g = analytic.Gaussian(torch.tensor([1.0, -0.5], dtype=F64), torch.tensor([[0.8, 0.3], [0.3, 0.5]], dtype=F64))
    x0, x1 = reflow.couple(g.denoiser("linear"), 64, steps=400, dtype=F64, generator=torch.Generator().manual_seed(0))
    exact = g.flow_map(x1, 1.0, 0.0, "linear")
    assert float((x0 - exact).abs().max()) < 5e-3
    with pytest.raises(ValueError, match="deterministic"):
        reflow.couple(g.denoiser("linear"), 4, solver="ddpm")


class Shift(nn.Module):
    """v(x, t) = b: a constant velocity (one parameter vector)."""

    def __init__(self):
        super().__init__()
        self.b = nn.Parameter(torch.zeros(2))

    def forward(self, x, t):
        return self.b.expand_as(x)


def test_flow_matching_on_a_shift_coupling_learns_the_shift(one_thread):
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(512, 2, generator=gen)
    shift = torch.tensor([1.5, -0.75])
    D = reflow.fit_coupling(Shift(), x0, x0 + shift, steps=150, lr=0.1, ema_decay=None, progress=False,
                            generator=gen)
    assert torch.allclose(D.net.b.detach(), shift, atol=5e-3)
    # the denoiser of a velocity model on the linear path: D(x, t) = x - t v
    x, t = torch.randn(8, 2, generator=gen), torch.tensor(0.4)
    assert torch.allclose(D(x, t), x - 0.4 * D.net.b.detach(), atol=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        reflow.fit_coupling(Shift(), x0, x0[:3], steps=1)
    with pytest.raises(ValueError, match="requires grad"):
        reflow.fit_coupling(Shift().requires_grad_(False), x0, x0, steps=1)


@given(st.integers(1, 12), st.floats(-3, 3), st.floats(-3, 3))
@settings(max_examples=25, deadline=None)
def test_straight_lines_at_constant_speed_have_zero_straightness(steps, a, b):
    ts = torch.linspace(1, 0, steps + 1, dtype=F64) ** 1.5 if steps > 1 else torch.tensor([1.0, 0.0], dtype=F64)
    start, end = torch.tensor([[a, b]], dtype=F64), torch.tensor([[b, -a]], dtype=F64)
    xs = start + (1 - ts)[:, None, None] * (end - start)           # position linear in t
    assert reflow.straightness(xs, ts) == pytest.approx(0.0, abs=1e-20)


def test_straightness_of_a_bent_path_by_hand():
    ts = torch.tensor([1.0, 0.5, 0.0], dtype=F64)
    xs = torch.tensor([[[0.0]], [[1.0]], [[1.0]]], dtype=F64)     # all the way in the first half
    # step velocities -2 and 0 against the line's -1: deviations 1 and 1, each for half the time
    assert reflow.straightness(xs, ts) == pytest.approx(1.0, rel=1e-14)
    with pytest.raises(ValueError, match="decreasing"):
        reflow.straightness(xs, ts.flip(0))
