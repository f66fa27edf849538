"""diffkit.sampler_error: the W2 of a sampler's output, exact or from samples, and orders.

Mathematics checked: the empirical W2 between point clouds is the optimum over all permutations
(brute force on small clouds), is zero against a permutation of itself, is |c| against a
translate by c, and in 1D equals the sorted matching; the noise floor shrinks with n; the NFE of
every fixed-grid solver follows its formula; the exact W2 of the matched Gaussian uses the law of
total covariance; the fitted order recovers an exact power law.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from diffkit import analytic, paths
from diffkit import sampler_error as se
from diffkit.samplers import available, info

F64 = torch.float64
pytestmark = pytest.mark.usefixtures("one_thread")


def _brute_w2(x, y):
    n = len(x)
    best = min(sum(((x[i] - y[p[i]]) ** 2).sum() for i in range(n)) / n
               for p in itertools.permutations(range(n)))
    return math.sqrt(best)


cloud = arrays(np.float64, st.tuples(st.integers(1, 6), st.just(2)),
               elements=st.floats(-5, 5, allow_nan=False, width=64))


@settings(max_examples=40, deadline=None)
@given(cloud, st.randoms(use_true_random=False))
def test_empirical_w2_is_the_optimal_assignment(x, rnd):
    y = x[::-1] + np.asarray([rnd.uniform(-1, 1) for _ in range(x.size)]).reshape(x.shape)
    assert se.empirical_w2(x, y) == pytest.approx(_brute_w2(x, y), rel=1e-9, abs=1e-12)
    perm = list(range(len(x)))
    rnd.shuffle(perm)
    assert se.empirical_w2(x, x[perm]) == 0.0
    c = np.array([rnd.uniform(-2, 2), rnd.uniform(-2, 2)])
    # a translation moves every point by c, and no coupling does better (Jensen)
    assert se.empirical_w2(x, x + c) == pytest.approx(float(np.linalg.norm(c)), rel=1e-9)


def test_empirical_w2_in_one_dimension_is_the_sorted_matching():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 1)), rng.exponential(size=(200, 1))
    sorted_w2 = math.sqrt(float(((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2).mean()))
    assert se.empirical_w2(x, y) == pytest.approx(sorted_w2, rel=1e-12)


def test_empirical_w2_refuses_bad_clouds():
    with pytest.raises(ValueError, match="x and y must be"):
        se.empirical_w2(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="finite"):
        se.empirical_w2(np.full((2, 2), np.nan), np.zeros((2, 2)))


def test_noise_floor_shrinks_with_n_and_sample_w2_of_exact_draws_sits_on_it():
    g = analytic.Gaussian(torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64))
    small, large = se.empirical_w2_floor(g, 32, reps=6), se.empirical_w2_floor(g, 256, reps=6)
    assert large[0] < small[0] and small[1] > 0
    # an exact sampler: its W2 estimate lies within the floor's spread
    draws = g.sample(256, generator=torch.Generator().manual_seed(7))
    assert abs(se.sample_w2(draws, g, seed=7) - large[0]) < 4 * large[1]
    # a sampler with a bias of 1 in x_1 stands far above the floor
    assert se.sample_w2(draws + torch.tensor([1.0, 0.0], dtype=F64), g, seed=7) > large[0] + 0.5


#: NFE of n steps, as the Samplers tab's help text states it
NFE_RULE = {"heun": lambda n: 2 * n - 1, "rk4": lambda n: 4 * n - 3, "pc": lambda n: 2 * n}


@pytest.mark.parametrize("solver", [s for s in available() if info(s).affine])
def test_solver_nfe_follows_the_stated_rule(solver):
    for n in (1, 2, 10):
        assert se.solver_nfe(solver, "vp-linear", "logsnr", n) == NFE_RULE.get(solver,
                                                                              lambda k: k)(n)
    with pytest.raises(ValueError, match="picks its steps"):
        se.solver_nfe("adaptive", "vp-linear")


def test_exact_w2_curve_and_matched_gaussian():
    mix = analytic.GaussianMixture(torch.tensor([0.3, 0.7], dtype=F64),
                                   torch.tensor([[-1.0, 0.0], [1.0, 0.5]], dtype=F64),
                                   torch.eye(2, dtype=F64).expand(2, 2, 2) * 0.2)
    g = se.matched_gaussian(mix)
    m = 0.3 * mix.means[0] + 0.7 * mix.means[1]
    cov = 0.2 * torch.eye(2, dtype=F64) + sum(w * torch.outer(mu - m, mu - m)
                                              for w, mu in zip((0.3, 0.7), mix.means))
    assert torch.allclose(g.mean, m, atol=1e-14) and torch.allclose(g.cov, cov, atol=1e-14)
    nfe, w2 = se.w2_vs_nfe("heun", "edm", g, [8, 16, 32], "logsnr")
    assert nfe == [15, 31, 63] and w2[0] > w2[1] > w2[2] > 0
    assert abs(se.fitted_order(nfe[-2:], w2[-2:]) - 2) < 0.3
    with pytest.raises(TypeError, match="analytic.Gaussian"):
        se.exact_w2("euler", "edm", mix)


def test_orders_recover_a_power_law():
    nfe = [4, 8, 16, 32]
    w2 = [3.0 * n ** -2.5 for n in nfe]
    assert se.fitted_order(nfe, w2) == pytest.approx(2.5, abs=1e-12)
    bent = [1.0, 1.0, *w2[2:]]  # a plateau first: the last two points still give the order
    assert se.asymptotic_order(nfe, bent, 2) == pytest.approx(2.5, abs=1e-12)
    with pytest.raises(ValueError, match="last must be"):
        se.asymptotic_order(nfe, w2, 1)


def test_sample_w2_curve_uses_the_same_draws_at_every_step_count():
    """Common random numbers: the 1-step run of any solver lands every start on D(x, t_0), the
    same points whatever the solver, so their estimates agree exactly."""
    mix = analytic.GaussianMixture(torch.tensor([0.5, 0.5], dtype=F64),
                                   torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=F64),
                                   torch.eye(2, dtype=F64).expand(2, 2, 2) * 0.1)
    a = se.sample_w2_vs_nfe("euler", "vp-linear", mix, [1, 8], "logsnr", n=64, seed=3)
    b = se.sample_w2_vs_nfe("ddim", "vp-linear", mix, [1, 8], "logsnr", n=64, seed=3)
    assert a[0] == b[0] == [1, 8] and a[1][0] == pytest.approx(b[1][0], rel=1e-12)
    assert paths.grid("logsnr", 1, "vp-linear").shape == (2,)
