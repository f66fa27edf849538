"""diffkit.metrics: exact numbers for the quality measures."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffkit import analytic, metrics
from diffkit.nn import Classifier


def test_w2_of_a_cloud_to_itself_and_to_a_shifted_copy():
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    perm = torch.randperm(300, generator=torch.Generator().manual_seed(1))
    assert metrics.w2_empirical(x, x[perm]) == 0.0
    shift = torch.tensor([0.3, -0.4], dtype=torch.float64)
    # a translation is optimal for W2 (Brenier: the gradient of a convex function), so W2 = |shift|
    assert metrics.w2_empirical(x, x + shift) == pytest.approx(0.5, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 3), st.integers(0, 10_000))
def test_w2_equals_brute_force_over_permutations(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g, dtype=torch.float64)
    best = min(float(((x - y[list(p)]) ** 2).sum(1).mean()) for p in itertools.permutations(range(n)))
    assert metrics.w2_empirical(x, y) == pytest.approx(math.sqrt(best), rel=1e-12, abs=1e-12)


def test_w2_in_one_dimension_is_the_sorted_matching():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(500, 1, generator=g, dtype=torch.float64), torch.rand(500, 1, generator=g, dtype=torch.float64)
    sorted_w2 = float(((x.sort(0).values - y.sort(0).values) ** 2).mean().sqrt())
    assert metrics.w2_empirical(x, y) == pytest.approx(sorted_w2, rel=1e-12)


def test_w2_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        metrics.w2_empirical(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="finite"):
        metrics.w2_empirical(torch.full((3, 2), float("nan")), torch.zeros(3, 2))


def test_frechet_distance_identities():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 5, generator=g, dtype=torch.float64) @ torch.randn(5, 5, generator=g, dtype=torch.float64)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    # a shift moves only the mean term
    assert metrics.frechet_distance(a, a + 2.0) == pytest.approx(5 * 4.0, rel=1e-9)
    # equals the squared W2 between the fitted Gaussians (analytic.w2_gaussian, a separate formula)
    b = 0.5 * torch.randn(300, 5, generator=g, dtype=torch.float64) + 1.0
    fit = lambda f: (f.mean(0), torch.cov(f.T))  # noqa: E731
    w2 = float(analytic.w2_gaussian(fit(a), fit(b)))
    assert metrics.frechet_distance(a, b) == pytest.approx(w2**2, rel=1e-9)
    # one dimension: (m_a - m_b)^2 + (s_a - s_b)^2
    u, v = a[:, :1], b[:, :1]
    closed = float((u.mean() - v.mean()) ** 2 + (u.std() - v.std()) ** 2)
    assert metrics.frechet_distance(u, v) == pytest.approx(closed, rel=1e-10)
    # rank-deficient features (fewer rows than features, a dead unit) are fine
    c = torch.randn(4, 6, generator=g, dtype=torch.float64)
    c[:, 0] = 0
    assert metrics.frechet_distance(c, c) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="same k"):
        metrics.frechet_distance(a, b[:, :3])


def test_denoiser_error_matches_the_closed_form_on_gaussian_data():
    """For Gaussian data and the exact denoiser of a *wrong* Gaussian, the Monte-Carlo error of
    denoiser_error agrees with analytic.Gaussian.denoising_error (closed form) within 3 standard
    errors, and the learned-vs-exact error has the bias-variance form
    ``E||D - x0||^2 = E||D - D*||^2 + E||D* - x0||^2``."""
    data = analytic.Gaussian(torch.tensor([0.5, -1.0], dtype=torch.float64),
                             torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64))
    wrong = analytic.Gaussian(torch.tensor([0.0, -0.5], dtype=torch.float64), 0.7 * torch.eye(2, dtype=torch.float64))
    ts = torch.tensor([0.1, 0.4, 0.8], dtype=torch.float64)
    n = 40_000
    g = torch.Generator().manual_seed(0)
    mc = metrics.denoiser_error(wrong.denoiser("vp-linear"), None, "vp-linear", ts, data, n=n, generator=g)
    exact = data.denoising_error(wrong.mean, wrong.cov, ts, "vp-linear")
    assert torch.allclose(mc, exact, rtol=0.03)
    g = torch.Generator().manual_seed(1)
    to_exact = metrics.denoiser_error(wrong.denoiser("vp-linear"), data.denoiser("vp-linear"), "vp-linear", ts,
                                      data, n=n, generator=g)
    mmse = data.denoising_error(data.mean, data.cov, ts, "vp-linear")
    torch.testing.assert_close(to_exact + mmse, exact, rtol=0.03, atol=0)
    # the exact denoiser is at zero distance from itself
    same = metrics.denoiser_error(data.denoiser("vp-linear"), data.denoiser("vp-linear"), "vp-linear", ts,
                                  data, n=10, generator=g)
    assert float(same.max()) == 0.0


def test_classifier_metrics_and_nearest_neighbours():
    torch.manual_seed(0)
    clf = Classifier(size=8, num_classes=10).double().eval()
    x = torch.randn(50, 1, 8, 8, dtype=torch.float64)
    pred = clf(x).argmax(1)
    assert metrics.classifier_accuracy(clf, x, pred) == 1.0
    assert metrics.classifier_accuracy(clf, x, (pred + 1) % 10) == 0.0
    assert metrics.digits_fid(clf, x, x) == pytest.approx(0.0, abs=1e-9)
    assert metrics.digits_fid(clf, x, x + 0.5) > 0
    train = torch.randn(80, 1, 8, 8, dtype=torch.float64)
    d = metrics.nearest_neighbour_distance(torch.cat([train[:3], train[:1] + 0.1]), train)
    torch.testing.assert_close(d[:3], torch.zeros(3, dtype=torch.float64))
    assert float(d[3]) <= 0.1 * 8 + 1e-12  # at most the distance to its own source row
    with pytest.raises(ValueError, match="labels must have shape"):
        metrics.classifier_accuracy(clf, x, pred[:3])
