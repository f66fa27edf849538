"""The tiny masked-diffusion transformer: its training loss, the command that trains the shipped
checkpoints, and the shipped checkpoints' measured quality against the exact oracles."""

from __future__ import annotations

import math

import pytest
import torch

from diffkit.discrete import HMMLanguage, decode, get_task
from diffkit.discrete.checkpoints import PRETRAINED, info, load_pretrained
from diffkit.discrete.tasks import TASKS
from diffkit.discrete.train_checkpoints import hmm_quality, main, training_loss
from diffkit.nn import MaskedTransformer


def test_training_loss_of_the_oracle_is_the_exact_nll():
    """With exact conditionals the MDLM bound is tight (any-order autoregression): the training
    loss is an unbiased estimate of -log p(x) per token. Checked to 5 standard errors."""
    lang = HMMLanguage.default()
    gen = torch.Generator().manual_seed(0)
    x = lang.sample(32, 6, generator=gen)
    xr = x.repeat(25, 1)  # each call averages 25 draws per sequence
    oracle = lang.as_model()
    keep_all = torch.ones_like(xr, dtype=torch.bool)
    vals = torch.tensor([float(training_loss(oracle, xr, keep_all, lang.mask_id, gen)) for _ in range(20)])
    exact = float(-lang.log_prob(x).sum() / x.numel())
    assert abs(vals.mean() - exact) < 5 * vals.std() / math.sqrt(len(vals))
    # a prompt that is kept visible contributes nothing: loss counts answer tokens only
    maskable = torch.zeros_like(keep_all)
    maskable[:, 3:] = True
    vals = torch.tensor([float(training_loss(oracle, xr, maskable, lang.mask_id, gen)) for _ in range(20)])
    cond = float(-(lang.log_prob(x) - lang.log_prob(x[:, :3])).sum() / (x.shape[0] * 3))
    assert abs(vals.mean() - cond) < 5 * vals.std() / math.sqrt(len(vals))


def test_hmm_quality_of_the_oracle_is_zero_and_of_a_random_net_is_not():
    lang = HMMLanguage.default()
    oracle = lang.as_model()
    q = hmm_quality(lambda x: oracle(x), lang, length=3, context=8, n_cond=16)
    assert q["law_kl_nats"] == pytest.approx(0.0, abs=1e-12)
    assert q["law_tv"] == pytest.approx(0.0, abs=1e-12)
    assert q["cond_kl_nats"] == pytest.approx(0.0, abs=1e-12)
    torch.manual_seed(0)
    net = MaskedTransformer(lang.vocab_size + 1, 8, dim=16, depth=1, heads=2, mask_id=lang.mask_id).double()
    q = hmm_quality(net, lang, length=3, context=8, n_cond=16)
    assert q["law_tv"] > 0.01 and q["law_kl_nats"] > 0 and q["cond_kl_nats"] > 0


def test_train_command_writes_loadable_checkpoints(tmp_path):
    """``python -m diffkit.discrete.train_checkpoints --fast`` (5 steps) writes both files, and the
    json records the recipe and the measured quality."""
    res = main(["--fast", "--only", "hmm-default", "--out", str(tmp_path), "--no-progress"])
    assert (tmp_path / "hmm-default.safetensors").exists() and (tmp_path / "hmm-default.json").exists()
    from diffkit.train import load_checkpoint

    net, meta = load_checkpoint(tmp_path / "hmm-default", lambda c: MaskedTransformer(**c))
    assert meta["metadata"]["steps"] == 5 and meta["config"]["mask_id"] == 3
    assert meta["metadata"]["quality"]["law_tv"] == pytest.approx(res["hmm-default"]["quality"]["law_tv"])
    assert net(torch.full((1, 10), 3)).shape == (1, 10, 4)


def test_shipped_checkpoints_quality():
    """The shipped networks (the only test that loads them): small, and close to the exact laws.
    HMM: exact TV between the true law of 4 tokens and the network's left-to-right law; tasks:
    greedy one-token-per-round decoding solves held-out prompts of every task."""
    for name in PRETRAINED:
        meta = info(name)
        assert meta["metadata"]["quality"]  # measured when trained
        assert (load_pretrained.__globals__["CHECKPOINT_DIR"] / f"{name}.safetensors").stat().st_size < 600_000
    net = load_pretrained("hmm-default")
    q = hmm_quality(net, length=4, context=32, n_cond=64)
    assert q["law_tv"] < 0.1 and q["law_kl_nats"] < 0.05 and q["cond_kl_nats"] < 0.02
    tnet = load_pretrained("tasks", dtype=torch.float64)
    gen = torch.Generator().manual_seed(7)
    for name in TASKS:
        task = get_task(name)
        prompts = task.sample_prompts(16, generator=gen)
        out = decode(tnet, prompts, task.answer_length, task.mask_id, block_length=4 if name == "latin" else None)
        assert task.score(prompts, out.tokens).mean() >= 0.9, name
    with pytest.raises(ValueError, match="unknown checkpoint"):
        load_pretrained("gpt-5")
