"""The public names of the API page (shared/API.md) exist and are documented.

Behaviour is tested elsewhere; this file keeps the front door from drifting."""

import inspect

import pytest

import diffkit
from diffkit import analytic, data, metrics, nn, paths, pretrained, train

CONTINUOUS = [
    (paths, "get"), (paths, "grid"), (paths.GaussianPath, "alpha"), (paths.GaussianPath, "sigma"),
    (paths.GaussianPath, "logsnr"), (paths.GaussianPath, "t_from_logsnr"),
    (analytic, "Gaussian"), (analytic, "GaussianMixture"), (analytic, "w2_gaussian"), (analytic, "kl_gaussian"),
    (analytic.Gaussian, "sample"), (analytic.Gaussian, "log_prob"), (analytic.Gaussian, "score"),
    (analytic.Gaussian, "denoiser"), (analytic.Gaussian, "velocity"), (analytic.Gaussian, "flow_map"),
    (analytic.Gaussian, "elbo"), (analytic.GaussianMixture, "sample"), (analytic.GaussianMixture, "marginal"),
]


LEARNING = [
    (data, "toy"), (data, "toy_mixture"), (data, "digits"), (train, "fit"), (train, "train"),
    (train, "LearnedDenoiser"), (train.LearnedDenoiser, "with_labels"), (train, "save_checkpoint"),
    (train, "load_checkpoint"), (pretrained, "available"), (pretrained, "load"),
    (pretrained.Pretrained, "denoiser"), (nn, "TimeMLP"), (nn, "UNet"), (nn, "Classifier"),
    (metrics, "denoiser_error"), (metrics, "w2_empirical"), (metrics, "classifier_accuracy"),
    (metrics, "frechet_distance"), (metrics, "digits_fid"), (metrics, "nearest_neighbour_distance"),
]


@pytest.mark.parametrize("owner,name", LEARNING, ids=lambda v: getattr(v, "__name__", str(v)))
def test_learning_names_exist_and_are_documented(owner, name):
    obj = getattr(owner, name)
    assert inspect.getdoc(obj), f"{name} has no docstring"


@pytest.mark.parametrize("owner,name", CONTINUOUS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_continuous_names_exist_and_are_documented(owner, name):
    obj = getattr(owner, name)
    assert inspect.getdoc(obj), f"{name} has no docstring"


def test_every_path_name_builds():
    assert set(paths.NAMES) == {"vp-linear", "vp-cosine", "ve", "edm", "linear"}
    for name in paths.NAMES:
        p = paths.get(name)
        for method in ("alpha", "sigma", "dalpha", "dsigma", "logsnr", "t_from_logsnr"):
            assert inspect.getdoc(getattr(p, method))


def test_version():
    assert diffkit.__version__.count(".") == 2
