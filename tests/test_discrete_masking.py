"""Masked diffusion: schedules, forward masking, the MDLM ELBO (exact and Monte Carlo), sampling."""

import itertools
import math

import pytest
import torch
from scipy.integrate import quad

from diffkit.discrete import HMMLanguage
from diffkit.discrete.exact import product_law, total_variation, true_law
from diffkit.discrete.masking import (
    SCHEDULES,
    ancestral_sample,
    exact_nelbo,
    get_schedule,
    mask_tokens,
    mdlm_loss,
    nelbo_weight,
)

pytestmark = pytest.mark.usefixtures("one_thread")


LANG = HMMLanguage.default()
MASK = LANG.mask_id


class RandomNet:
    """A fixed random model whose conditionals are not those of any one joint law."""

    def __init__(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.emb = torch.randn(4, 6, generator=g, dtype=torch.float64)
        self.out = torch.randn(6, 4, generator=g, dtype=torch.float64)

    def __call__(self, x):
        h = self.emb[x]
        h = h + torch.tanh(h.mean(1, keepdim=True))
        logits = h @ self.out
        logits[..., MASK] = -math.inf
        return logits


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules(name):
    s = get_schedule(name)
    assert float(s.alpha(0.0)) == pytest.approx(1.0, abs=1e-15)
    assert float(s.alpha(1.0)) == pytest.approx(0.0, abs=1e-15)
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    h = 1e-6
    fd = (s.alpha(t + h) - s.alpha(t - h)) / (2 * h)
    assert torch.allclose(s.dalpha(t), fd, atol=1e-8)
    assert (s.dalpha(t) < 0).all()
    with pytest.raises(ValueError):
        get_schedule("sqrt")


def test_mask_tokens_rate_and_keep():
    x0 = torch.zeros(400, 50, dtype=torch.long)
    keep = torch.zeros(50, dtype=torch.bool)
    keep[:5] = True
    xt = mask_tokens(x0, 0.3, MASK, "cosine", torch.Generator().manual_seed(0), keep=keep)
    rate = (xt[:, 5:] == MASK).double().mean().item()
    want = 1 - float(get_schedule("cosine").alpha(0.3))
    assert abs(rate - want) < 4 * math.sqrt(want * (1 - want) / (400 * 45))
    assert not (xt[:, :5] == MASK).any()
    t = torch.tensor([0.0, 1.0]).repeat(200)
    xt = mask_tokens(torch.zeros(400, 8, dtype=torch.long), t, MASK)
    assert not (xt[0::2] == MASK).any() and (xt[1::2] == MASK).all()


def test_exact_nelbo_is_tight_for_the_oracle():
    x = LANG.sample(6, 5, torch.Generator().manual_seed(1))
    assert torch.allclose(exact_nelbo(LANG.as_model(), x, MASK), -LANG.log_prob(x), atol=1e-12)
    other = HMMLanguage.random(3, 3, torch.Generator().manual_seed(2))
    assert torch.allclose(exact_nelbo(other.as_model(), x, MASK), -other.log_prob(x), atol=1e-12)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_exact_nelbo_equals_the_time_integral(schedule):
    """Brute force: integrate w(t) E_{x_t}[masked NLL] over t numerically, with the expectation
    summed over all 2^L mask patterns; it equals the closed form for any model and schedule."""
    net = RandomNet()
    x0 = torch.tensor([[0, 2, 1, 1]])
    length = 4
    patterns = list(itertools.product([False, True], repeat=length))
    losses = []
    for pat in patterns:
        m = torch.tensor(pat)
        xt = torch.where(m, torch.tensor(MASK), x0[0]).unsqueeze(0)
        logp = torch.log_softmax(net(xt), -1)[0]
        losses.append((sum(pat), -sum(logp[i, x0[0, i]].item() for i in range(length) if pat[i])))
    sched = get_schedule(schedule)

    def integrand(t):
        a = float(sched.alpha(t))
        w = float(nelbo_weight(t, schedule))
        return w * sum(a ** (length - k) * (1 - a) ** k * loss for k, loss in losses)

    value, _ = quad(integrand, 0.0, 1.0, epsabs=1e-13, epsrel=1e-12, limit=200)
    assert exact_nelbo(net, x0, MASK).item() == pytest.approx(value, rel=1e-9)


def test_monte_carlo_loss_matches_the_exact_nelbo():
    x = LANG.sample(1, 6, torch.Generator().manual_seed(3)).expand(20000, -1)
    est = mdlm_loss(LANG.as_model(), x, MASK, "linear", generator=torch.Generator().manual_seed(4),
                    t_min=0.0, reduction="none")
    want = -LANG.log_prob(x[:1]).item()
    assert abs(est.mean().item() - want) < 4 * est.std().item() / math.sqrt(est.numel())
    scalar = mdlm_loss(LANG.as_model(), x[:10], MASK, "cosine", generator=torch.Generator().manual_seed(5))
    assert scalar.dim() == 0 and torch.isfinite(scalar)


def test_ancestral_sampling_laws():
    n = 4000
    prompt = torch.tensor([0, 1]).expand(n, -1)
    truth = true_law(LANG, torch.tensor([0, 1]), 3)
    many = ancestral_sample(LANG.as_model(), prompt, 3, MASK, steps=100,
                            generator=torch.Generator().manual_seed(6))
    assert torch.equal(many.tokens[:, :2], prompt) and many.nfe <= 100
    codes = (many.tokens[:, 2:] * torch.tensor([9, 3, 1])).sum(1)
    emp = torch.bincount(codes, minlength=27).double() / n
    # fine steps reveal one token at a time: the true law (sampling error ~0.025 at n = 4000)
    assert 0.5 * (emp - truth[1]).abs().sum() < 0.06
    one = ancestral_sample(LANG.as_model(), prompt, 3, MASK, steps=1,
                           generator=torch.Generator().manual_seed(7))
    assert one.nfe == 1
    marg = LANG.marginals(torch.tensor([[0, 1, MASK, MASK, MASK]]), MASK)[0, 2:]
    prod = product_law(marg)
    emp = torch.bincount((one.tokens[:, 2:] * torch.tensor([9, 3, 1])).sum(1), minlength=27).double() / n
    assert 0.5 * (emp - prod[1]).abs().sum() < 0.06  # one step: the product of marginals
    assert total_variation(prod, truth) > 0.15 and 0.5 * (emp - truth[1]).abs().sum() > 0.1
    with pytest.raises(ValueError):
        ancestral_sample(LANG.as_model(), torch.tensor([MASK]), 3, MASK)
