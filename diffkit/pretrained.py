"""The shipped learned models: load one by name, with what was measured when it was trained.

``available()`` lists them; ``load(name)`` returns a :class:`Pretrained` with ``.net`` (the
network, eval mode), ``.denoiser(labels=None)`` (a :class:`diffkit.train.LearnedDenoiser`, the
same wrapper that :func:`diffkit.train.fit` returns), ``.path`` (the checkpoint's files without
suffix), ``.config`` and ``.metrics``. Each is ``diffkit/checkpoints/<name>.safetensors`` beside
``<name>.json`` and is reproduced by ``python -m diffkit.pretrained --train <name>`` (a fixed
seed, one CPU thread; ``--train all`` for every model, ``--fast`` for a smoke run, ``--out DIR``
to write elsewhere).

=====================  ==========================================================================
``gmm8-elbo``          :class:`~diffkit.nn.TimeMLP`, ``vp-linear``, ELBO weighting, predicts ``eps``
``gmm8-dsm``           the same network, denoising score matching, predicts the ``score``
``gmm8-cfm``           the same network on the ``linear`` (rectified-flow) path, conditional flow
                       matching, predicts the ``velocity``
``moons``              ``TimeMLP`` on 20,000 fixed points of ``moons``, ``linear`` path, CFM
``digits``             a class-conditional :class:`~diffkit.nn.UNet` on the digits train split
                       (``vp-cosine``, DSM, ``eps``; 10 classes and the null label); its denoiser
                       clips the predicted ``x0`` to the data range ``[-1, 1]``
``digits-classifier``  :class:`~diffkit.nn.Classifier` on the digits train split, the judge of
                       the digit samples (accuracy, digits FID)
=====================  ==========================================================================

Metrics recorded at training time (``.metrics``): for ``gmm8-*`` the denoiser's mean-squared error
against the exact mixture denoiser over a grid of ``t`` (and the MMSE it is measured against) and
the exact W2 between 2000 samples (``dpm++2m``, 20 steps) and 2000 draws of the mixture, beside the
W2 between two such draws (the sampling-noise floor); for ``moons`` the same W2 against held-out
points; for ``digits`` the classifier's accuracy on 100 class-conditional samples per class
(``dpm++2m``, 20 steps), the digits FID against the test split, and the mean distance of a sample
to its nearest training image (with the test split's own values for scale); for the classifier
its test accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from . import data as _data
from . import metrics as _metrics
from . import nn as _nn
from .train import LearnedDenoiser, fit, load_checkpoint, save_checkpoint, train

__all__ = ["available", "load", "Pretrained", "RECIPES", "CHECKPOINT_DIR", "train_model", "main"]

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"

#: every shipped model: its network, data, path, loss, target and training recipe
RECIPES: dict = {
    "gmm8-elbo": dict(kind="denoiser", net="TimeMLP", arch=dict(dim=2, hidden=128, depth=3), data="gmm8",
                      path="vp-linear", loss="elbo", target="eps", steps=2000, batch_size=256, lr=3e-3,
                      warmup=100, ema_decay=0.995, seed=0),
    "gmm8-dsm": dict(kind="denoiser", net="TimeMLP", arch=dict(dim=2, hidden=128, depth=3), data="gmm8",
                     path="vp-linear", loss="dsm", target="score", steps=2000, batch_size=256, lr=3e-3,
                     warmup=100, ema_decay=0.995, seed=0),
    "gmm8-cfm": dict(kind="denoiser", net="TimeMLP", arch=dict(dim=2, hidden=128, depth=3), data="gmm8",
                     path="linear", loss="cfm", target="velocity", steps=2000, batch_size=256, lr=3e-3,
                     warmup=100, ema_decay=0.995, seed=0),
    "moons": dict(kind="denoiser", net="TimeMLP", arch=dict(dim=2, hidden=128, depth=3), data="moons",
                  n_train=20_000, path="linear", loss="cfm", target="velocity", steps=2000, batch_size=256,
                  lr=3e-3, warmup=100, ema_decay=0.995, seed=0),
    "digits": dict(kind="denoiser", net="UNet", arch=dict(channels=1, base=16, mults=[1, 2, 2], num_classes=10),
                   data="digits", path="vp-cosine", loss="dsm", target="eps", x0_range=[-1.0, 1.0],
                   steps=3000, batch_size=128,
                   lr=2e-3, warmup=100, ema_decay=0.999, label_dropout=0.1, seed=0),
    "digits-classifier": dict(kind="classifier", net="Classifier", arch=dict(channels=1, size=8, num_classes=10),
                              data="digits", steps=1500, batch_size=128, lr=2e-3, warmup=50, seed=0),
}
_NETS = {"TimeMLP": _nn.TimeMLP, "UNet": _nn.UNet, "Classifier": _nn.Classifier}
#: the grid of t at which the gmm8 models' denoiser error is recorded
GMM8_TS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8)


def available() -> tuple:
    """Names of the shipped models whose files are present."""
    return tuple(n for n in RECIPES if (CHECKPOINT_DIR / f"{n}.json").exists())


def _check_name(name: str) -> str:
    if name not in RECIPES:
        raise ValueError(f"name must be one of {', '.join(RECIPES)}; got {name!r}")
    return name


def build(config: dict) -> torch.nn.Module:
    """The network a checkpoint's config describes (``config["net"]`` with ``config["arch"]``)."""
    if config.get("net") not in _NETS or not isinstance(config.get("arch"), dict):
        raise ValueError(f"config must name a net among {', '.join(_NETS)} with an 'arch' object")
    return _NETS[config["net"]](**config["arch"])


@dataclass
class Pretrained:
    """A shipped model: ``net`` (eval mode), ``path`` (files without suffix), ``config`` (how to
    rebuild and use it), ``metrics`` (measured at training time) and ``info`` (the whole json)."""

    name: str
    net: torch.nn.Module
    path: Path
    config: dict
    metrics: dict
    info: dict

    def denoiser(self, labels=None) -> LearnedDenoiser:
        """``D(x, t)`` for :func:`diffkit.sample`; ``labels`` (an int or ``[batch]`` ints) for the
        class-conditional ``digits`` model, ``None`` for the unconditional denoiser."""
        if self.config.get("kind") != "denoiser":
            raise ValueError(f"{self.name!r} is a {self.config.get('kind')}, not a denoiser")
        return LearnedDenoiser(self.net, self.config["target"], self.config["path"], labels,
                               x0_range=self.config.get("x0_range"))


def load(name: str, device=None, directory: Optional[Path] = None) -> Pretrained:
    """Load the shipped model ``name`` (one of :func:`available`) with safetensors; damaged files
    raise ``ValueError`` naming the file (:func:`diffkit.train.load_checkpoint`)."""
    _check_name(name)
    stem = Path(directory or CHECKPOINT_DIR) / name
    net, info = load_checkpoint(stem, build, device=device)
    return Pretrained(name, net, stem, info["config"], info["metadata"].get("metrics", {}), info)


# ------------------------------------------------------------------------------------ training
def _config(recipe: dict) -> dict:
    keys = ("kind", "net", "arch", "data", "path", "loss", "target", "x0_range")
    return {k: recipe[k] for k in keys if k in recipe}


def _train_denoiser(name: str, recipe: dict, steps: int, progress: bool):
    torch.manual_seed(recipe["seed"])
    net = build(_config(recipe))
    gen = torch.Generator().manual_seed(recipe["seed"] + 1)
    labels = None
    if recipe["data"] == "gmm8":
        x = _data.toy_mixture("gmm8")
    elif recipe["data"] == "digits":
        x, labels = _data.digits("train")
    else:
        x = _data.toy(recipe["data"], recipe["n_train"], torch.Generator().manual_seed(recipe["seed"] + 2))
    extra = {"labels": labels, "label_dropout": recipe["label_dropout"]} if labels is not None else {}
    D = fit(net, x, recipe["path"], loss=recipe["loss"], target=recipe["target"], steps=steps,
            batch_size=recipe["batch_size"], lr=recipe["lr"], warmup=min(recipe["warmup"], steps - 1),
            ema_decay=recipe["ema_decay"], generator=gen, progress=progress, desc=name, **extra)
    return D.net, D.result.seconds


def _train_classifier(name: str, recipe: dict, steps: int, progress: bool):
    """Cross-entropy with AdamW on the train split; each batch shifted by up to one pixel (a
    standard augmentation, so that a sample drawn a pixel off-centre is still judged fairly)."""
    torch.manual_seed(recipe["seed"])
    net = build(_config(recipe))
    x, y = _data.digits("train")
    gen = torch.Generator().manual_seed(recipe["seed"] + 1)

    def loss_fn(m):
        idx = torch.randint(x.shape[0], (recipe["batch_size"],), generator=gen)
        xb = x[idx]
        dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=gen))
        xb = torch.nn.functional.pad(xb, (1, 1, 1, 1), value=-1.0)[:, :, 1 + dy: 9 + dy, 1 + dx: 9 + dx]
        return torch.nn.functional.cross_entropy(m(xb), y[idx])

    res = train(net, loss_fn, steps, lr=recipe["lr"], warmup=min(recipe["warmup"], steps - 1),
                weight_decay=1e-4, ema_decay=None, progress=progress, desc=name)
    return res.model, res.seconds


@torch.no_grad()
def _measure(name: str, recipe: dict, net, fast: bool, directory: Path) -> dict:
    from .samplers import sample

    g = torch.Generator().manual_seed(123)
    if recipe["kind"] == "classifier":
        xt, yt = _data.digits("test")
        return {"test_accuracy": _metrics.classifier_accuracy(net, xt, yt)}
    D = LearnedDenoiser(net, recipe["target"], recipe["path"], x0_range=recipe.get("x0_range"))
    if recipe["data"] in ("gmm8", "moons"):
        n = 500 if fast else 2000
        x1 = torch.randn(n, 2, generator=g, dtype=torch.float64)
        out = sample(D, recipe["path"], x1, solver="dpm++2m", steps=20).x
        ref = _data.toy(recipe["data"], n, torch.Generator().manual_seed(1001), dtype=torch.float64)
        other = _data.toy(recipe["data"], n, torch.Generator().manual_seed(1002), dtype=torch.float64)
        m = {"sample_w2": _metrics.w2_empirical(out, ref), "noise_floor_w2": _metrics.w2_empirical(other, ref),
             "samples": n, "solver": "dpm++2m", "steps": 20}
        if recipe["data"] == "gmm8":
            mix = _data.toy_mixture("gmm8")
            exact = mix.denoiser(recipe["path"])
            err = _metrics.denoiser_error(D, exact, recipe["path"], GMM8_TS, mix, n=n,
                                          generator=torch.Generator().manual_seed(7))
            mmse = _metrics.denoiser_error(exact, None, recipe["path"], GMM8_TS, mix, n=n,
                                           generator=torch.Generator().manual_seed(7))
            m.update(ts=list(GMM8_TS), denoiser_mse=err.tolist(), mmse=mmse.tolist(),
                     mean_relative_mse=float((err / mmse).mean()))
        return m
    # digits: judged by the shipped classifier
    clf_dir = directory if (directory / "digits-classifier.json").exists() else CHECKPOINT_DIR
    clf = load("digits-classifier", directory=clf_dir).net
    per = 10 if fast else 100
    labels = torch.arange(10).repeat_interleave(per)
    x1 = torch.randn(len(labels), 1, 8, 8, generator=g)
    out = sample(D.with_labels(labels), recipe["path"], x1, solver="dpm++2m", steps=20).x.clamp(-1, 1)
    xtr, _ = _data.digits("train")
    xte, _ = _data.digits("test")
    return {"accuracy": _metrics.classifier_accuracy(clf, out, labels),
            "digits_fid": _metrics.digits_fid(clf, out, xte),
            "train_vs_test_fid": _metrics.digits_fid(clf, xtr, xte),
            "nn_distance_mean": float(_metrics.nearest_neighbour_distance(out, xtr).mean()),
            "test_nn_distance_mean": float(_metrics.nearest_neighbour_distance(xte, xtr).mean()),
            "samples_per_class": per, "solver": "dpm++2m", "steps": 20}


def train_model(name: str, directory: Optional[Path] = None, fast: bool = False, progress: bool = True) -> dict:
    """Train ``name`` by its recipe (one CPU thread), measure it, save it; returns the json."""
    recipe = RECIPES[_check_name(name)]
    directory = Path(directory or CHECKPOINT_DIR)
    steps = 20 if fast else recipe["steps"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        load_before = os.getloadavg()
        if recipe["kind"] == "classifier":
            net, seconds = _train_classifier(name, recipe, steps, progress)
        else:
            net, seconds = _train_denoiser(name, recipe, steps, progress)
        load_after = os.getloadavg()
        measured = _measure(name, recipe, net.eval(), fast, directory)
    finally:
        torch.set_num_threads(threads)
    meta = {"metrics": measured, "recipe": recipe, "steps": steps, "train_seconds": round(seconds, 1),
            "threads": 1, "cpu_count": os.cpu_count(), "load_average_1min": [round(load_before[0], 2), round(load_after[0], 2)],
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
            "command": f"python -m diffkit.pretrained --train {name}"}
    save_checkpoint(directory / name, net, _config(recipe), meta)
    return meta


def main(argv: Optional[list] = None) -> None:
    parser = argparse.ArgumentParser(description="Train and measure the shipped models of diffkit.pretrained.")
    parser.add_argument("--train", nargs="+", metavar="NAME", help=f"'all' or some of: {', '.join(RECIPES)}")
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR)
    parser.add_argument("--fast", action="store_true", help="20 steps and small metrics (a smoke run)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if not args.train:
        for name in available():
            m = load(name)
            print(f"{name}: {m.info['metadata'].get('train_seconds')} s, {json.dumps(m.metrics)}")
        return
    names = list(RECIPES) if args.train == ["all"] else args.train
    for name in names:
        _check_name(name)
    if "digits" in names and "digits-classifier" in names:  # the judge first
        names.remove("digits-classifier")
        names.insert(0, "digits-classifier")
    for name in names:
        meta = train_model(name, args.out, fast=args.fast, progress=not args.no_progress)
        print(f"{name}: {meta['train_seconds']} s (load {meta['load_average_1min']}), {json.dumps(meta['metrics'])}",
              flush=True)


if __name__ == "__main__":
    main()
