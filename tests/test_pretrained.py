"""The shipped models: they load with safetensors, are small, and are as good as their json says."""

from __future__ import annotations

import pytest
import torch

import diffkit
from diffkit import data, metrics, paths, pretrained

SHIPPED = ("gmm8-elbo", "gmm8-dsm", "gmm8-cfm", "moons", "digits", "digits-classifier")


def test_every_model_is_shipped_small_and_documented():
    assert set(pretrained.available()) == set(SHIPPED) == set(pretrained.RECIPES)
    for name in SHIPPED:
        m = pretrained.load(name)
        st = m.path.with_suffix(".safetensors")
        assert st.stat().st_size < 2 * 1024 * 1024
        meta = m.info["metadata"]
        assert meta["command"] == f"python -m diffkit.pretrained --train {name}"
        assert meta["train_seconds"] > 0 and meta["steps"] == pretrained.RECIPES[name]["steps"]
        assert m.metrics and not m.net.training


@pytest.mark.parametrize("name", ["gmm8-elbo", "gmm8-dsm", "gmm8-cfm"])
def test_gmm8_models_answer_to_the_exact_denoiser(name, one_thread):
    """The recorded error curve is reproduced by measuring the loaded model with the same seeds,
    and the learned denoiser is within a fifth of the MMSE on average over t."""
    m = pretrained.load(name)
    mix = data.toy_mixture("gmm8")
    exact = mix.denoiser(paths.get(m.config["path"]))
    ts = torch.tensor(m.metrics["ts"], dtype=torch.float64)
    err = metrics.denoiser_error(m.denoiser(), exact, m.config["path"], ts, mix, n=m.metrics["samples"],
                                 generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(err, torch.tensor(m.metrics["denoiser_mse"], dtype=torch.float64), rtol=1e-5, atol=1e-9)
    mmse = torch.tensor(m.metrics["mmse"], dtype=torch.float64)
    head = ts <= 0.6  # beyond, eps and score targets amplify errors by sigma / alpha (see test_fit)
    assert float((err / mmse)[head].mean()) < 0.2
    assert m.metrics["sample_w2"] < m.metrics["noise_floor_w2"] + 0.25


def test_moons_samples_are_close_to_held_out_data(one_thread):
    m = pretrained.load("moons")
    assert m.metrics["sample_w2"] < m.metrics["noise_floor_w2"] + 0.25
    x1 = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    out = diffkit.sample(m.denoiser(), m.config["path"], x1, solver="dpm++2m", steps=20).x
    ref = data.toy("moons", 500, torch.Generator().manual_seed(5))
    floor = metrics.w2_empirical(data.toy("moons", 500, torch.Generator().manual_seed(6)), ref)
    assert metrics.w2_empirical(out, ref) < floor + 0.2


def test_digits_classifier_and_class_conditional_samples(one_thread):
    clf = pretrained.load("digits-classifier")
    xte, yte = data.digits("test")
    acc = metrics.classifier_accuracy(clf.net, xte, yte)
    assert acc == pytest.approx(clf.metrics["test_accuracy"], abs=1e-12) and acc >= 0.95
    m = pretrained.load("digits")
    assert m.metrics["accuracy"] >= 0.9
    assert m.metrics["nn_distance_mean"] > 0.5  # no copying of training images
    labels = torch.arange(10).repeat_interleave(5)
    x1 = torch.randn(50, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    out = diffkit.sample(m.denoiser(labels=labels), m.config["path"], x1, solver="dpm++2m", steps=20).x
    assert metrics.classifier_accuracy(clf.net, out.clamp(-1, 1), labels) >= 0.8
    # the null label gives the unconditional denoiser of the same network
    t = torch.tensor(0.5)
    assert (m.denoiser()(x1, t) - m.denoiser(labels=labels)(x1, t)).abs().max() > 1e-4


def test_bad_names_and_kinds():
    with pytest.raises(ValueError, match="name must be one of"):
        pretrained.load("cifar10")
    with pytest.raises(ValueError, match="not a denoiser"):
        pretrained.load("digits-classifier").denoiser()
    with pytest.raises(ValueError, match="unconditional"):
        pretrained.load("moons").denoiser(labels=3)


def test_the_training_command_runs_and_saves_what_it_measured(tmp_path, one_thread):
    meta = pretrained.train_model("gmm8-cfm", tmp_path, fast=True, progress=False)
    m = pretrained.load("gmm8-cfm", directory=tmp_path)
    assert m.metrics == meta["metrics"] and meta["steps"] == 20
    assert {p.name for p in tmp_path.iterdir()} == {"gmm8-cfm.json", "gmm8-cfm.safetensors"}
