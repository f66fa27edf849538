"""The HMM oracle language: exact likelihoods and conditionals against brute-force enumeration."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffkit.discrete import HMMLanguage, MarkovChain, all_sequences

pytestmark = pytest.mark.usefixtures("one_thread")


def brute_joint(lang: HMMLanguage, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """p(x) for every sequence, by summing p(x, s) over every hidden path (no recursion)."""
    seqs = all_sequences(lang.vocab_size, length)
    probs = torch.zeros(seqs.shape[0], dtype=torch.float64)
    for path in itertools.product(range(lang.num_states), repeat=length):
        path = torch.tensor(path)
        p_path = lang.initial[path[0]] * torch.prod(lang.transition[path[:-1], path[1:]])
        probs += p_path * torch.prod(lang.emission[path.unsqueeze(0).expand_as(seqs), seqs], dim=1)
    return seqs, probs


@pytest.fixture(scope="module")
def lang():
    return HMMLanguage.random(3, 3, torch.Generator().manual_seed(0), concentration=0.7)


def test_log_prob_matches_sum_over_hidden_paths(lang):
    seqs, probs = brute_joint(lang, 4)
    assert torch.allclose(lang.log_prob(seqs).exp(), probs, rtol=1e-12, atol=0)
    assert abs(probs.sum().item() - 1.0) < 1e-12


def test_marginals_match_enumeration(lang):
    length, mask = 5, lang.mask_id
    seqs, probs = brute_joint(lang, length)
    gen = torch.Generator().manual_seed(1)
    x = lang.sample(12, length, gen)
    hide = torch.rand(12, length, generator=gen) < 0.5
    hide[0] = True  # nothing visible
    tokens = torch.where(hide, torch.full_like(x, mask), x)
    got = lang.marginals(tokens, mask)
    assert got.dtype == torch.float64 and got.shape == (12, length, 3)
    for r in range(12):
        consistent = ((seqs == tokens[r]) | hide[r]).all(1)
        w = probs * consistent
        # p(visible) with masked positions summed out
        assert math.isclose(lang.log_prob(tokens[r:r + 1], mask).item(), math.log(w.sum().item()),
                            rel_tol=1e-11, abs_tol=1e-12)
        w = w / w.sum()
        for i in range(length):
            want = torch.zeros(3, dtype=torch.float64).index_add_(0, seqs[:, i], w)
            assert torch.allclose(got[r, i], want, atol=1e-13), (r, i)


def test_marginals_are_stable_for_long_sequences(lang):
    x = lang.sample(2, 400, torch.Generator().manual_seed(3))
    x[:, ::3] = lang.mask_id
    m = lang.marginals(x, lang.mask_id)
    assert torch.isfinite(m).all()
    assert torch.allclose(m.sum(-1), torch.ones(2, 400, dtype=torch.float64), atol=1e-12)
    assert torch.isfinite(lang.log_prob(x, lang.mask_id)).all()


def test_sample_follows_the_law(lang):
    seqs, probs = brute_joint(lang, 3)
    x = lang.sample(40000, 3, torch.Generator().manual_seed(4))
    idx = (x * torch.tensor([9, 3, 1])).sum(1)
    freq = torch.bincount(idx, minlength=27).double() / x.shape[0]
    # TV of an empirical law with 27 cells and n=40000 is about 0.01; 0.03 is a loose bound
    assert 0.5 * (freq - probs).abs().sum() < 0.03
    same = lang.sample(5, 7, torch.Generator().manual_seed(9))
    assert torch.equal(same, lang.sample(5, 7, torch.Generator().manual_seed(9)))


def test_markov_chain_is_identity_emission():
    chain = MarkovChain.random(4, torch.Generator().manual_seed(5))
    x = chain.sample(6, 5, torch.Generator().manual_seed(6))
    direct = torch.log(chain.initial[x[:, 0]]) + torch.log(chain.transition[x[:, :-1], x[:, 1:]]).sum(1)
    assert torch.allclose(chain.log_prob(x), direct, atol=1e-12)
    # conditional of a masked middle token: p(x_i | x_{i-1}, x_{i+1}) ∝ T[a, v] T[v, b]
    t = x.clone()
    t[:, 2] = chain.mask_id
    m = chain.marginals(t, chain.mask_id)[:, 2]
    want = chain.transition[x[:, 1]] * chain.transition[:, x[:, 3]].T
    assert torch.allclose(m, want / want.sum(1, keepdim=True), atol=1e-13)


def test_as_model_logits_convention(lang):
    model = lang.as_model()
    x = lang.sample(3, 6, torch.Generator().manual_seed(7))
    x[:, 1:4] = lang.mask_id
    logits = model(x)
    assert logits.shape == (3, 6, lang.vocab_size + 1)
    assert torch.isneginf(logits[..., lang.mask_id]).all()
    assert torch.allclose(logits.softmax(-1)[..., :3], lang.marginals(x, lang.mask_id), atol=1e-14)
    wide = lang.as_model(mask_id=10)(torch.where(x == lang.mask_id, 10, x))
    assert wide.shape == (3, 6, 11) and torch.isneginf(wide[..., 3:]).all()
    with pytest.raises(ValueError):
        lang.as_model(mask_id=1)


def test_random_and_validation():
    lang = HMMLanguage.random(4, 5, torch.Generator().manual_seed(8), concentration=0.1, floor=0.01)
    for m in (lang.initial, lang.transition, lang.emission):
        assert torch.allclose(m.sum(-1), torch.ones_like(m.sum(-1)), atol=1e-12)
    assert lang.emission.min() >= 0.01 / 5 - 1e-15
    d = HMMLanguage.default()
    assert (d.num_states, d.vocab_size, d.mask_id) == (2, 3, 3)
    with pytest.raises(ValueError):
        HMMLanguage([0.5, 0.6], torch.eye(2), torch.eye(2))
    with pytest.raises(ValueError):
        HMMLanguage([0.5, 0.5], torch.eye(3), torch.eye(2))
    with pytest.raises(ValueError):
        d.log_prob(torch.tensor([[0, 5]]))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), states=st.integers(1, 3), vocab=st.integers(2, 3),
       length=st.integers(1, 4), hide=st.integers(0, 15))
def test_marginals_property(seed, states, vocab, length, hide):
    """For random HMMs and mask patterns: the forward-backward conditionals equal enumeration."""
    lang = HMMLanguage.random(states, vocab, torch.Generator().manual_seed(seed), concentration=0.3)
    seqs, probs = brute_joint(lang, length)
    x = lang.sample(1, length, torch.Generator().manual_seed(seed + 1))[0]
    hidden = torch.tensor([(hide >> i) & 1 == 1 for i in range(length)])
    tokens = torch.where(hidden, torch.tensor(lang.mask_id), x)
    w = probs * ((seqs == tokens) | hidden).all(1)
    w = w / w.sum()
    got = lang.marginals(tokens.unsqueeze(0), lang.mask_id)[0]
    for i in range(length):
        want = torch.zeros(vocab, dtype=torch.float64).index_add_(0, seqs[:, i], w)
        assert torch.allclose(got[i], want, atol=1e-12)
