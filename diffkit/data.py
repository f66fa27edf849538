"""Data for the lessons: five 2-D toy sets and scikit-learn's 8x8 digits.

2-D sets (:func:`toy`), all scaled to lie roughly in ``[-3, 3]^2`` so that one network size, one
learning rate and one plotting window serve them all:

``moons``         two interleaved half circles (the shape of scikit-learn's ``make_moons``)
``swissroll``     a 2-D spiral ``r(s) (cos s, sin s)`` with ``r`` growing linearly in ``s``
``checkerboard``  uniform on the eight dark squares of a 4 x 4 board
``spirals``       two interleaved arms of an Archimedean spiral
``gmm8``          eight Gaussians on a circle: exactly :func:`toy_mixture("gmm8")`, an
                  :class:`diffkit.analytic.GaussianMixture`, so a model trained on it has an exact
                  denoiser (and score, and velocity) to answer to

Digits (:func:`digits`): the 1797 8x8 grey-level digits that ship *inside* scikit-learn
(``sklearn.datasets.load_digits``, UCI "optdigits" test set; nothing is downloaded), as
``[N, 1, 8, 8]`` float32 in ``[-1, 1]`` with int64 labels, split once into a stratified train /
test split (a fixed seed: the same split on every machine).

Every random draw comes from the ``generator`` argument; the same seed gives the same points.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from . import _checks
from .analytic import GaussianMixture

__all__ = ["TOY_NAMES", "MIXTURE_NAMES", "toy", "toy_mixture", "digits", "DIGITS_TEST_FRACTION"]

TOY_NAMES = ("moons", "swissroll", "checkerboard", "spirals", "gmm8")
MIXTURE_NAMES = ("gmm8",)

#: geometry of ``gmm8``: radius of the circle of means and standard deviation of each component
GMM8_RADIUS = 2.0
GMM8_STD = 0.25

#: the share of every class held out in the test split of :func:`digits`
DIGITS_TEST_FRACTION = 0.2
#: the most points :func:`toy` draws in one call (10 million 2-D points: 160 MB in float64)
MAX_N = 10**7
_DIGITS_SEED = 0


def _check_count(n) -> int:
    return _checks.integer("n", n, 1, MAX_N)


def _check_name(name, names, what="name") -> str:
    if name not in names:
        raise ValueError(f"{what} must be one of {', '.join(names)}; got {name!r}")
    return name


def toy_mixture(name: str = "gmm8") -> GaussianMixture:
    """The exact law of a mixture toy set, float64: ``gmm8`` is ``K = 8`` equal-weight isotropic
    Gaussians of standard deviation :data:`GMM8_STD` with means ``GMM8_RADIUS (cos 2 pi k/8,
    sin 2 pi k/8)``."""
    _check_name(name, MIXTURE_NAMES)
    angles = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
    means = GMM8_RADIUS * torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    covs = GMM8_STD**2 * torch.eye(2, dtype=torch.float64).expand(8, 2, 2)
    return GaussianMixture(torch.ones(8, dtype=torch.float64), means, covs)


def _uniform(n, generator, dtype):
    return torch.rand(n, generator=generator, dtype=dtype)


def _moons(n, generator, dtype, noise=0.1):
    upper = torch.rand(n, generator=generator) < 0.5
    s = math.pi * _uniform(n, generator, dtype)
    # scikit-learn's moons: upper (cos s, sin s), lower (1 - cos s, 1/2 - sin s); centred, scaled x2
    x = torch.where(upper, torch.cos(s), 1 - torch.cos(s))
    y = torch.where(upper, torch.sin(s), 0.5 - torch.sin(s))
    pts = 2.0 * torch.stack([x - 0.5, y - 0.25], 1)
    return pts + noise * torch.randn(n, 2, generator=generator, dtype=dtype)


def _swissroll(n, generator, dtype, noise=0.1):
    s = 1.5 * math.pi * (1 + 2 * _uniform(n, generator, dtype))  # s in [1.5 pi, 4.5 pi]
    pts = torch.stack([s * torch.cos(s), s * torch.sin(s)], 1) / 5.0
    return pts + noise * torch.randn(n, 2, generator=generator, dtype=dtype)


def _checkerboard(n, generator, dtype):
    # the eight squares (i, j) of a 4 x 4 board on [-2, 2]^2 with i + j even, scaled by 1.5
    cells = torch.tensor([(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0], dtype=dtype)
    which = torch.randint(len(cells), (n,), generator=generator)
    u = torch.rand(n, 2, generator=generator, dtype=dtype)
    return 1.5 * (cells[which] + u - 2.0)


def _spirals(n, generator, dtype, noise=0.08):
    arm = (torch.rand(n, generator=generator) < 0.5).to(dtype)
    r = torch.sqrt(_uniform(n, generator, dtype))  # uniform density along the area swept
    s = 3 * math.pi * r + math.pi * arm
    pts = 2.8 * r[:, None] * torch.stack([torch.cos(s), torch.sin(s)], 1)
    return pts + noise * torch.randn(n, 2, generator=generator, dtype=dtype)


_MAKERS = {"moons": _moons, "swissroll": _swissroll, "checkerboard": _checkerboard, "spirals": _spirals}


def toy(name: str, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n`` points ``[n, 2]`` of the 2-D set ``name`` (one of :data:`TOY_NAMES`), in ``dtype``.

    ``gmm8`` draws from :func:`toy_mixture` (in float64, then cast), so its exact oracles apply.
    """
    _check_name(name, TOY_NAMES)
    n = _check_count(n)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype; got {dtype!r}")
    if name in MIXTURE_NAMES:
        return toy_mixture(name).sample(n, generator=generator).to(dtype)
    return _MAKERS[name](n, generator, torch.float64).to(dtype)


@lru_cache(maxsize=1)
def _digits_split():
    import numpy as np
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 8.0 - 1.0  # 0..16 -> [-1, 1]
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    rng = np.random.RandomState(_DIGITS_SEED)  # RandomState's stream is frozen across numpy versions
    test = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        idx = np.flatnonzero(bunch.target == c)
        k = int(round(DIGITS_TEST_FRACTION * len(idx)))
        test[rng.permutation(idx)[:k]] = True
    test = torch.as_tensor(test)
    return (images[~test], labels[~test]), (images[test], labels[test])


def digits(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits: ``(images [N, 1, 8, 8] float32 in [-1, 1], labels [N] int64)``.

    ``split`` is ``"train"`` (1438 images), ``"test"`` (359 images: :data:`DIGITS_TEST_FRACTION`
    of every class, chosen once with a fixed seed) or ``"all"`` (1797, in scikit-learn's order).
    Fresh copies are returned, so callers may modify them.
    """
    _check_name(split, ("train", "test", "all"), "split")
    (xtr, ytr), (xte, yte) = _digits_split()
    if split == "train":
        return xtr.clone(), ytr.clone()
    if split == "test":
        return xte.clone(), yte.clone()
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 8.0 - 1.0,
            torch.as_tensor(bunch.target, dtype=torch.int64))
