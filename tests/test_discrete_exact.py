"""Exact laws of dLLM decoders against the oracle's true law."""

import math

import pytest
import torch

from diffkit.discrete import HMMLanguage, MarkovChain, decode, get_task
from diffkit.discrete.exact import (
    bits_to_rounds,
    entropy,
    kl_divergence,
    monte_carlo,
    output_law,
    product_law,
    total_correlation,
    total_variation,
    true_law,
)

pytestmark = pytest.mark.usefixtures("one_thread")


LANG = HMMLanguage.default()
PROMPT = torch.tensor([0, 1])
G = 4


@pytest.fixture(scope="module")
def truth():
    return true_law(LANG, PROMPT, G)


@pytest.mark.parametrize("strategy", ["random", "margin", "entropy"])
def test_one_token_per_round_at_temperature_one_is_exact(truth, strategy):
    law = output_law(LANG, PROMPT, G, strategy=strategy, steps=G, temperature=1.0)
    assert total_variation(law, truth) < 1e-12
    assert abs(kl_divergence(truth, law)) < 1e-12
    assert law.expected_rounds == pytest.approx(G, abs=1e-12)
    assert list(law.rounds_law) == [G] and law.rounds_law[G] == pytest.approx(1.0, abs=1e-12)
    assert max(law.total_correlation) == 0.0  # single tokens carry no total correlation
    # the rounds reveal exactly the sample's information: E[sum of surprisals] = H
    assert math.isclose(law.information, entropy(truth), rel_tol=1e-12)
    assert bits_to_rounds(law.information, law.max_round_information) <= law.expected_rounds


def test_one_round_gives_the_product_of_marginals(truth):
    law = output_law(LANG, PROMPT, G, strategy="random", steps=1, temperature=1.0)
    masked = torch.cat([PROMPT, torch.full((G,), LANG.mask_id)]).unsqueeze(0)
    marg = LANG.marginals(masked, LANG.mask_id)[0, 2:]
    prod = product_law(marg)
    assert total_variation(law, prod) < 1e-12
    tv = total_variation(law, truth)
    assert tv > 0.01 and abs(tv - total_variation(prod, truth)) < 1e-12
    tv_direct = 0.5 * sum(abs(float(p) - float(q)) for p, q in zip(truth[1], prod[1]))  # same order
    assert abs(tv - tv_direct) < 1e-12
    # KL(joint || product of marginals) is the total correlation of the round's set
    h_marg = sum(-(m * torch.log(m)).sum().item() for m in marg)
    tc = h_marg - entropy(truth)
    assert math.isclose(law.total_correlation[0], tc, rel_tol=1e-10)
    assert math.isclose(kl_divergence(truth, law), tc, rel_tol=1e-10)
    margin = output_law(LANG, PROMPT, G, strategy="margin", steps=1, temperature=1.0)
    assert total_variation(margin, law) < 1e-12


def test_confidence_with_sampling_is_biased_exactly():
    """Two iid tokens with p = (0.7, 0.3): LLaDA's confidence rule at temperature 1 samples both,
    commits the more probable sample first (ties to the left), then resamples the other one.
    P(x_1 = 0) = 0.7 + 0.3 * 0.7 * 0.7 = 0.847, not 0.7."""
    iid = MarkovChain([0.7, 0.3], [[0.7, 0.3], [0.7, 0.3]])
    law = output_law(iid, torch.zeros(0, dtype=torch.long), 2, steps=2, temperature=1.0).as_dict()
    assert math.isclose(law[(0, 0)] + law[(0, 1)], 0.847, rel_tol=1e-12)
    assert math.isclose(law[(0, 0)] + law[(1, 0)], 0.7 + 0.3 * 0.3 * 0.7, rel_tol=1e-12)


def test_greedy_decoding_is_a_point_mass(truth):
    for strategy, kw in [("confidence", {"steps": 2}), ("threshold", {"threshold": 0.5}),
                         ("factor", {}), ("prophet", {"steps": 4, "gap": 0.5})]:
        law = output_law(LANG, PROMPT, G, strategy=strategy, **kw)
        out = decode(LANG.as_model(), PROMPT, G, LANG.mask_id, strategy=strategy, **kw)
        assert law.as_dict() == {tuple(out.tokens[0, 2:].tolist()): 1.0}
        assert law.expected_rounds == out.nfe
        assert math.isclose(total_variation(law, truth), 1 - truth[1][
            (truth[0] == out.tokens[0, 2:]).all(1)].item(), rel_tol=1e-12)
    dv = output_law(LANG, PROMPT, G, strategy="draft-verify")
    assert dv.as_dict() == output_law(LANG, PROMPT, G, steps=G).as_dict()


def test_threshold_extremes_and_blocks(truth):
    one = output_law(LANG, PROMPT, G, strategy="threshold", threshold=1e-9, temperature=1.0,
                     block_length=2)
    blocks = output_law(LANG, PROMPT, G, strategy="random", steps=2, block_length=2, temperature=1.0)
    assert total_variation(one, blocks) < 1e-12 and one.expected_rounds == 2
    t1 = output_law(LANG, PROMPT, G, strategy="threshold", threshold=1.0, temperature=1.0)
    conf = output_law(LANG, PROMPT, G, steps=G, temperature=1.0)
    assert total_variation(t1, conf) < 1e-12
    # two blocks of two: less parallel than one round, so closer to the truth
    single = output_law(LANG, PROMPT, G, strategy="random", steps=1, temperature=1.0)
    assert total_variation(blocks, truth) < total_variation(single, truth)


def test_task_oracle_parallel_failure_is_exact():
    task = get_task("shuffle")
    prompt = torch.tensor([task.task_token, 0, 1, 2, 3])
    truth = true_law(task, prompt, 4)
    one = output_law(task, prompt, 4, strategy="random", steps=1, temperature=1.0)
    # all four positions uniform over 4 symbols, independently: 24 of the 256 outcomes are valid
    assert math.isclose(total_variation(one, truth), 1 - 24 / 256, rel_tol=1e-12)
    assert math.isclose(one.total_correlation[0], 4 * math.log(4) - math.log(24), rel_tol=1e-12)
    seq = output_law(task, prompt, 4, strategy="random", steps=4, temperature=1.0)
    assert total_variation(seq, truth) < 1e-12


def test_total_correlation_of_two_variables_is_mutual_information():
    comps = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
    joint = torch.tensor([0.4, 0.1, 0.2, 0.3], dtype=torch.float64)
    px, py = [0.5, 0.5], [0.6, 0.4]
    mi = sum(float(joint[2 * a + b]) * math.log(float(joint[2 * a + b]) / (px[a] * py[b]))
             for a in range(2) for b in range(2))
    got = total_correlation(comps, joint, torch.tensor([-1, -1]), [0, 1])
    assert math.isclose(got, mi, rel_tol=1e-12)
    assert total_correlation(comps, joint, torch.tensor([0, -1]), [1]) == 0.0
    assert bits_to_rounds(12.0, 3.0) == 4.0


def test_monte_carlo_agrees_with_the_exact_law(truth):
    gen = torch.Generator().manual_seed(0)
    mc = monte_carlo(LANG, PROMPT, G, n=2000, strategy="random", steps=1, temperature=1.0,
                     generator=gen)
    law = output_law(LANG, PROMPT, G, strategy="random", steps=1, temperature=1.0)
    p = truth[1]
    q = torch.tensor([law.as_dict().get(tuple(c.tolist()), 0.0) for c in truth[0]], dtype=torch.float64)
    exact_ce = float(-(q * torch.log2(p)).sum())
    assert abs(mc.nll_bits - exact_ce) < 4 * mc.nll_bits_se
    assert abs(mc.reference_nll_bits - entropy(truth) / math.log(2)) < 4 * mc.reference_nll_bits_se
    assert mc.rounds == 1


@pytest.mark.parametrize("strategy,kw", [("confidence", {"steps": 2}),
                                         ("threshold", {"threshold": 0.5}),
                                         ("factor", {"factor": 2.0}),
                                         ("prophet", {"steps": 4, "gap": 1.0}),
                                         ("random", {"steps": 2, "block_length": 2})])
def test_enumerated_law_matches_decode_samples(strategy, kw):
    """The tree walk and decode() are written separately: decode's empirical law must match."""
    n = 10000
    law = output_law(LANG, PROMPT, G, strategy=strategy, temperature=1.0, **kw).as_dict()
    out = decode(LANG.as_model(), PROMPT.expand(n, -1), G, LANG.mask_id, strategy=strategy,
                 temperature=1.0, generator=torch.Generator().manual_seed(11), **kw)
    codes = (out.tokens[:, 2:] * torch.tensor([27, 9, 3, 1])).sum(1)
    emp = torch.bincount(codes, minlength=81).double() / n
    exact = torch.zeros(81, dtype=torch.float64)
    for k, v in law.items():
        exact[27 * k[0] + 9 * k[1] + 3 * k[2] + k[3]] = v
    # the empirical TV of 10000 draws over <= 81 cells is about 0.02
    assert 0.5 * (emp - exact).abs().sum() < 0.05


def test_memo_model_computes_each_state_once_and_changes_no_law():
    from diffkit.discrete import MemoModel

    lang = HMMLanguage.default()
    prompt = torch.tensor([[0, 1]])
    memo = MemoModel(lang.as_model())
    a = output_law(lang, prompt, 4, strategy="random", steps=2, temperature=1.0, model=memo)
    b = output_law(lang, prompt, 4, strategy="random", steps=2, temperature=1.0)
    assert total_variation(a, b) == 0.0 and a.expected_rounds == b.expected_rounds
    first = memo.calls
    output_law(lang, prompt, 4, strategy="random", steps=2, temperature=1.0, model=memo)  # same states
    assert memo.calls == first
    assert memo.calls == first
    out = memo(torch.tensor([[0, 1, lang.mask_id]]))
    out.zero_()                                                   # callers may write into it
    assert not torch.equal(memo(torch.tensor([[0, 1, lang.mask_id]])), out)


def test_pareto_front_keeps_exactly_the_non_dominated_points():
    """A point is on the front when no other has rounds <= and TV <= with one strict: exact ties
    stay (three strategies all exact at one token per round), dominated points go, and float
    noise in the expected rounds (2.0000000000000004) counts as equal."""
    from diffkit.discrete import pareto_front

    pts = [{"label": "a", "rounds": 1.0, "tv": 0.5}, {"label": "b", "rounds": 2.0000000000000004, "tv": 0.1},
           {"label": "c", "rounds": 2.0, "tv": 0.3}, {"label": "d", "rounds": 3.0, "tv": 0.1},
           {"label": "e", "rounds": 4.0, "tv": 0.0}, {"label": "f", "rounds": 4.0, "tv": 0.0}]
    front = {p["label"] for p in pareto_front(pts)}
    brute = {p["label"] for p in pts if not any(
        q["rounds"] <= p["rounds"] + 1e-9 and q["tv"] <= p["tv"]
        and (q["rounds"] < p["rounds"] - 1e-9 or q["tv"] < p["tv"]) for q in pts)}
    assert front == brute == {"a", "b", "e", "f"}
