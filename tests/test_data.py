"""diffkit.data: the 2-D toy sets and the 8x8 digits."""

from __future__ import annotations

import math

import pytest
import torch

from diffkit import analytic, data


@pytest.mark.parametrize("name", data.TOY_NAMES)
def test_toy_shape_range_and_seed(name):
    a = data.toy(name, 4000, torch.Generator().manual_seed(3))
    b = data.toy(name, 4000, torch.Generator().manual_seed(3))
    c = data.toy(name, 4000, torch.Generator().manual_seed(4))
    assert a.shape == (4000, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    # every set lives in roughly [-3, 3]^2 and is spread over it
    assert a.abs().max() < 3.6
    assert 0.8 < float(a.std(0).min()) and float(a.std(0).max()) < 2.5
    assert data.toy(name, 5, dtype=torch.float64).dtype == torch.float64


def test_gmm8_samples_its_mixture():
    mix = data.toy_mixture("gmm8")
    assert isinstance(mix, analytic.GaussianMixture) and mix.means.shape == (8, 2)
    torch.testing.assert_close(mix.means.norm(dim=1), torch.full((8,), data.GMM8_RADIUS, dtype=torch.float64))
    x = data.toy("gmm8", 5, torch.Generator().manual_seed(0), dtype=torch.float64)
    y = mix.sample(5, torch.Generator().manual_seed(0))
    assert torch.equal(x, y)  # the same draw: gmm8 *is* the mixture
    # moments: mean 0, covariance (R^2 / 2 + s^2) I for eight means evenly on a circle
    torch.testing.assert_close(mix.mean, torch.zeros(2, dtype=torch.float64), atol=1e-15, rtol=0)
    expect = (data.GMM8_RADIUS**2 / 2 + data.GMM8_STD**2) * torch.eye(2, dtype=torch.float64)
    torch.testing.assert_close(mix.cov, expect, atol=1e-14, rtol=0)


def test_checkerboard_is_uniform_on_dark_squares():
    x = data.toy("checkerboard", 20000, torch.Generator().manual_seed(0), dtype=torch.float64)
    cell = torch.floor(x / 1.5).long() + 2  # square index 0..3 per axis
    assert bool(((cell.sum(1)) % 2 == 0).all())
    counts = torch.bincount(cell[:, 0] * 4 + cell[:, 1], minlength=16)
    dark = counts[counts > 0]
    assert len(dark) == 8 and float((dark / 20000 - 1 / 8).abs().max()) < 0.01


def test_bad_toy_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        data.toy("circles", 10)
    with pytest.raises(ValueError, match="n must be"):
        data.toy("moons", 0)
    with pytest.raises(ValueError, match="n must be"):
        data.toy("moons", 2.5)
    with pytest.raises(ValueError, match="dtype"):
        data.toy("moons", 3, dtype=torch.int64)
    with pytest.raises(ValueError, match="name must be one of gmm8"):
        data.toy_mixture("moons")


def test_digits_split_is_fixed_stratified_and_disjoint():
    xtr, ytr = data.digits("train")
    xte, yte = data.digits("test")
    xall, yall = data.digits("all")
    assert xtr.shape == (1438, 1, 8, 8) and xte.shape == (359, 1, 8, 8) and xall.shape == (1797, 1, 8, 8)
    assert xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert float(xall.min()) == -1.0 and float(xall.max()) == 1.0
    # grey levels 0..16 map to multiples of 1/8
    torch.testing.assert_close(xall * 8, torch.round(xall * 8), atol=0, rtol=0)
    # stratified: each class keeps round(20%) of its images in the test split
    per_class = torch.bincount(yall, minlength=10)
    torch.testing.assert_close(torch.bincount(yte, minlength=10),
                               torch.round(per_class * data.DIGITS_TEST_FRACTION).long())
    # a partition of the whole set: together they are the multiset of all images
    both = torch.cat([xtr, xte]).reshape(1797, -1)
    key = lambda x: sorted(map(tuple, x.mul(8).round().long().tolist()))  # noqa: E731
    assert key(both) == key(xall.reshape(1797, -1))
    # fixed: the same split on every call, and copies that callers may change
    xtr[0] = 0
    assert not torch.equal(data.digits("train")[0], xtr) and torch.equal(data.digits("test")[1], yte)
    with pytest.raises(ValueError, match="split must be one of"):
        data.digits("valid")


def test_spirals_and_swissroll_radii_grow_with_angle():
    """Points of the swiss roll lie near the curve r = |s| / 5 of their own angle: the distance to
    the origin is a monotone function of the arc parameter (up to the noise)."""
    x = data.toy("swissroll", 2000, torch.Generator().manual_seed(0), dtype=torch.float64)
    r = x.norm(dim=1)
    assert 1.5 * math.pi / 5 - 0.5 < float(r.min()) and float(r.max()) < 4.5 * math.pi / 5 + 0.5
