"""The strategy records and the rules added through them: Dream's schedule and position sampling
reproduced, reference ranking precision, EB / credit / hierarchy / ReMDM / WINO, guidance and the
EOS knobs, remasking chains' exact laws against Monte Carlo, row invariance, robustness."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_discrete_decode import reference_generate

from diffkit.discrete import HMMLanguage, decode, output_law, strategies
from diffkit.discrete import strategy_records as records
from diffkit.discrete.decode import configure, model_logits
from diffkit.discrete.exact import product_law, total_variation
from diffkit.discrete.planner import Plan, even_split
from diffkit.discrete.strategies import RoundContext, remdm_probabilities

pytestmark = pytest.mark.usefixtures("one_thread")

MASK = 5
LANG = HMMLanguage.default()  # V = 3, mask 3


class RandomModel:
    """A fixed random bidirectional 'network' over 5 tokens + mask (id 5); the mask's logit is
    -inf; ``dtype`` is the dtype of the logits it returns."""

    def __init__(self, length, seed=0, vocab=5, dim=8, dtype=torch.float64, scale=2.0):
        g = torch.Generator().manual_seed(seed)
        self.emb = torch.randn(vocab + 1, dim, generator=g, dtype=torch.float64)
        self.mix = torch.randn(length, length, generator=g, dtype=torch.float64) / length ** 0.5
        self.out = scale * torch.randn(dim, vocab + 1, generator=g, dtype=torch.float64)
        self.dtype = dtype

    def __call__(self, x):
        h = self.emb[x]
        h = h + torch.tanh(torch.einsum("ij,bjd->bid", self.mix[: x.shape[1], : x.shape[1]], h))
        logits = h @ self.out
        logits[..., MASK] = -float("inf")
        return logits.to(self.dtype)


def law_of_samples(tokens, vocab):
    """Empirical law of rows as a dict."""
    out = {}
    for row in tokens.tolist():
        out[tuple(row)] = out.get(tuple(row), 0.0) + 1.0 / tokens.shape[0]
    return out


# ---------------------------------------------------------------------- the records
def test_every_strategy_has_a_record_read_by_decode():
    for name in strategies():
        rec = records.info(name)
        assert rec.name == name and rec.walk in ("set", "tokens", "special")
        assert set(records.options_of(name)) == {o.name for o in rec.options}
    with pytest.raises(ValueError, match="strategy must be one of"):
        records.info("greedy")
    with pytest.raises(ValueError, match="gamma"):
        records.check_options("eb", {"gamma": -1.0})
    with pytest.raises(ValueError, match="unknown option"):
        records.check_options("eb", {"factor": 1.0})
    with pytest.raises(ValueError, match="eta"):
        records.check_options("remdm", {"eta": float("nan")})
    with pytest.raises(ValueError, match="draft"):
        records.check_options("draft-verify", {"draft": 2.5})


# ---------------------------------------------------------------------- Dream
def dream_reference(model, prompt, gen_length, steps, eps, alg):
    """Dream's ``_sample`` at temperature 0, written from its code's semantics: timesteps
    ``linspace(1, eps, steps + 1)`` (float32); at step ``i`` the scores of every masked position
    (max probability / top-1 minus top-2 / sum p log(p + 1e-10)) in the logits' dtype, ``-inf``
    elsewhere; ``k = int(n_masked (1 - s / t))`` (the rest at the last step, ``n_masked``
    averaged over the batch) committed by ``torch.topk`` over the whole row."""
    x = torch.cat([prompt, torch.full((prompt.shape[0], gen_length), MASK, dtype=torch.long)], 1)
    timesteps = torch.linspace(1, eps, steps + 1)
    for i in range(steps):
        mask_index = x == MASK
        logits = model(x)
        probs = torch.softmax(logits[mask_index], -1)
        conf, x0 = probs.max(-1)
        if alg == "margin":
            top = torch.sort(probs, -1, descending=True).values
            conf = top[:, 0] - top[:, 1]
        elif alg == "entropy":
            conf = (probs * torch.log(probs + 1e-10)).sum(-1)
        t, s = timesteps[i], timesteps[i + 1]
        n = mask_index.sum() / mask_index.shape[0]
        k = int(n * (1 - s / t)) if i < steps - 1 else int(n)
        full = torch.full(x.shape, -torch.inf, dtype=logits.dtype)
        full[mask_index] = conf
        if k > 0:
            idx = torch.topk(full, k).indices
            filled = torch.full_like(x, MASK)
            filled[mask_index] = x0
            rows = torch.arange(x.shape[0]).unsqueeze(1).expand_as(idx)
            x[rows, idx] = filled[rows, idx]
    return x


@pytest.mark.parametrize("alg", ["confidence", "margin", "entropy"])
@pytest.mark.parametrize("steps,gen_length,eps", [(4, 12, 1e-3), (7, 12, 0.1), (12, 12, 1e-3),
                                                  (20, 10, 1e-3), (3, 16, 0.5)])
def test_dream_schedule_reproduces_dream_token_for_token(alg, steps, gen_length, eps):
    model = RandomModel(3 + gen_length, seed=steps + gen_length, dtype=torch.float32)
    prompt = torch.randint(5, (3, 3), generator=torch.Generator().manual_seed(steps))
    want = dream_reference(model, prompt, gen_length, steps, eps, alg)
    for rank_dtype in ("logits", "float64"):
        out = decode(model, prompt, gen_length, MASK, steps=steps, strategy=alg, schedule="dream",
                     eps=eps, rank_dtype=rank_dtype)
        assert torch.equal(out.tokens, want), rank_dtype
        assert out.nfe <= steps


def test_dream_and_even_schedules_differ_and_plan_numbers():
    plan = Plan(0, 12, 12, 4, "dream", 1e-3)
    masked = torch.tensor([12])
    sizes, now = [], masked.clone()
    for r in range(4):
        k = int(plan.budget(r, now, masked))
        sizes.append(k)
        now = now - k
    # t = 1, .75025, .5005, .25075, .001: int(12 * .24975) = 2, int(10 * .3329) = 3, int(7 * .499) = 3
    assert sizes == [2, 3, 3, 4] and sum(sizes) == 12
    assert even_split(masked, 4).tolist() == [[3, 3, 3, 3]]
    # nothing of size `steps` is allocated for the even split: 10**12 rounds plan at once
    big = Plan(0, 8, 8, 10 ** 12, "even")
    assert big.next_round(0, torch.tensor([8]), torch.tensor([8])) == 0
    assert big.next_round(8, torch.tensor([0]), torch.tensor([8])) == 10 ** 12


def test_alg_temp_draws_positions_with_the_exact_law():
    """Dream's position sampling: decode's empirical law equals the walked law (draw without
    replacement from softmax(score / alg_temp))."""
    n = 3000
    kw = dict(strategy="margin", steps=2, alg_temp=0.5, schedule="dream", temperature=1.0)
    law = output_law(LANG, torch.tensor([0, 1]), 3, **kw)
    assert math.isclose(float(law.probs.sum()), 1.0, rel_tol=1e-12)
    out = decode(LANG.as_model(), torch.tensor([[0, 1]]).expand(n, -1), 3, LANG.mask_id,
                 generator=torch.Generator().manual_seed(0), **kw)
    emp = law_of_samples(out.tokens[:, 2:], 3)
    assert total_variation(emp, law) < 0.045
    greedy = output_law(LANG, torch.tensor([0, 1]), 3, strategy="margin", steps=2, schedule="dream",
                        temperature=1.0)
    assert total_variation(greedy, law) > 0.05  # the draw changes the law


# ---------------------------------------------------------------------- reference precision
def test_rank_dtype_logits_reproduces_the_bfloat16_reference():
    differ = 0
    for seed in range(6):
        model = RandomModel(19, seed=seed, dtype=torch.bfloat16, scale=0.05)
        prompt = torch.randint(5, (4, 3), generator=torch.Generator().manual_seed(seed))
        # LLaDA's generate written from its description; with bfloat16 logits its softmax and
        # ranking happen in bfloat16, as in LLaDA's code
        want = reference_generate(model, prompt, 8, 16, 8, MASK)
        got = decode(model, prompt, 16, MASK, steps=8, block_length=8, rank_dtype="logits")
        assert torch.equal(got.tokens, want)
        plain = decode(model, prompt, 16, MASK, steps=8, block_length=8)
        differ += int(not torch.equal(plain.tokens, want))
    # bfloat16 confidences tie often; float64 ranking (the default) breaks the ties differently
    assert differ > 0


# ---------------------------------------------------------------------- the new rules
def _ctx(probs, **kw):
    b, length, _ = probs.shape
    return RoundContext(logits=torch.log(probs), x=torch.zeros(b, length, dtype=torch.long),
                        mask_id=-1, block=(0, length), remaining=torch.ones(b, length, dtype=torch.bool), **kw)


def test_eb_hierarchy_rules_on_hand_made_probabilities():
    p = torch.tensor([[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.9, 0.1, 0.0], [1 / 3, 1 / 3, 1 / 3]]],
                     dtype=torch.float64)
    tok = p.argmax(-1)
    cand = torch.ones(1, 4, dtype=torch.bool)
    one = torch.tensor([1])
    h = [0.0, math.log(2), -(0.9 * math.log(0.9) + 0.1 * math.log(0.1)), math.log(3)]
    eb = records.info("eb").rule
    # sorted entropies 0, .325, .693, 1.099: cumsum - cummax = 0, 0, .325, 1.018
    assert eb(p, tok, cand, one, _ctx(p), gamma=0.0).tolist() == [[True, False, True, False]]
    assert eb(p, tok, cand, one, _ctx(p), gamma=h[2] + 1e-9).tolist() == [[True, True, True, False]]
    assert eb(p, tok, cand, one, _ctx(p), gamma=10.0).all()
    hier = records.info("hierarchy").rule
    c2 = torch.tensor([[True, True, False, True]])
    # runs {0, 1} and {3}: best of each (1.0 and 1/3); 1/3 is not above low_threshold .4
    assert hier(p, tok, c2, one, _ctx(p), threshold=0.95, low_threshold=0.4).tolist() == [[True, False, False, False]]
    c3 = torch.tensor([[False, True, True, True]])
    # one run {1, 2, 3}: its best (.9); nothing else above .95
    assert hier(p, tok, c3, one, _ctx(p), threshold=0.95, low_threshold=0.4).tolist() == [[False, False, True, False]]
    assert hier(p, tok, c3, one, _ctx(p), threshold=0.45, low_threshold=0.4).tolist() == [[False, True, True, False]]
    # nothing above low_threshold: the single best
    assert hier(p, tok, torch.tensor([[False, False, False, True]]), one, _ctx(p), threshold=0.9,
                low_threshold=0.5).tolist() == [[False, False, False, True]]


def test_credit_accumulates_as_dinfer_states():
    hook = records.info("credit").logits_hook
    logits = torch.log(torch.tensor([[[0.6, 0.4], [0.2, 0.8]]], dtype=torch.float64))
    masked = torch.tensor([[True, True]])
    ctx = _ctx(torch.softmax(logits, -1))
    f1 = hook(logits, ctx, masked, alpha=0.7, boost=0.2, decay=0.8)
    c1 = torch.tensor([[[0.6 ** 0.2, 0.0], [0.0, 0.8 ** 0.2]]], dtype=torch.float64)
    assert torch.allclose(ctx.state["credit"], c1, rtol=1e-15)
    assert torch.allclose(f1, logits + 0.7 * torch.log1p(c1), rtol=1e-15)
    hook(logits, ctx, torch.tensor([[True, False]]), alpha=0.7, boost=0.2, decay=0.8)
    c2 = 0.8 * c1 + torch.tensor([[[0.6 ** 0.2, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    assert torch.allclose(ctx.state["credit"], c2, rtol=1e-15)


def test_remdm_probabilities_closed_form():
    for steps in (1, 3, 8):
        # eta = 0: MDLM's ancestral step, each mask unmasks with probability 1 / (steps left)
        for r in range(steps):
            p, sigma = remdm_probabilities(r, steps, 0.0)
            assert sigma == 0 and math.isclose(p, 1 / (steps - r), rel_tol=1e-12)
        # the last step commits everything and remasks nothing
        assert remdm_probabilities(steps - 1, steps, 0.5) == (1.0, 0.0)
    # capped: sigma = min(eta, (1 - a_s) / a_t) with a_t = 1/4, a_s = 1/2 at step 1 of 4
    p, sigma = remdm_probabilities(1, 4, 0.3)
    assert math.isclose(sigma, 0.3) and math.isclose(p, (0.5 - 0.7 * 0.25) / 0.75)
    # sigma_max = min(1, (1 - a_s) / a_t) = min(1, 2): a large eta remasks every draft
    p, sigma = remdm_probabilities(1, 4, 5.0)
    assert sigma == 1.0 and math.isclose(p, 0.5 / 0.75)


@pytest.mark.parametrize("strategy,kw", [("remdm", {"steps": 3, "eta": 0.3}),
                                         ("wino", {"wide": 0.5, "narrow": 0.6}),
                                         ("eb", {"gamma": 0.3}),
                                         ("credit", {"threshold": 0.5}),
                                         ("hierarchy", {"low_threshold": 0.3, "threshold": 0.6})])
def test_exact_law_of_new_rules_matches_monte_carlo(strategy, kw):
    """The tree walk (remasking chains included) against decode's samples at temperature 1."""
    n = 6000
    prompt = torch.tensor([0, 1])
    law = output_law(LANG, prompt, 3, strategy=strategy, temperature=1.0, **kw)
    assert math.isclose(float(law.probs.sum()), 1.0, rel_tol=1e-9)
    out = decode(LANG.as_model(), prompt.expand(n, -1), 3, LANG.mask_id, strategy=strategy,
                 temperature=1.0, generator=torch.Generator().manual_seed(5), **kw)
    # the empirical TV of 6000 draws over 27 cells is about 0.02
    assert total_variation(law_of_samples(out.tokens[:, 2:], 3), law) < 0.045
    if records.info(strategy).fixed_schedule:  # ReMDM: every step is a round
        assert out.nfe == kw["steps"] and math.isclose(law.expected_rounds, kw["steps"])
    else:
        rounds = torch.stack([r.committed.any(-1) for r in out.history]).sum(0).double().mean()
        assert abs(float(rounds) - law.expected_rounds) < 0.1


def test_remdm_with_eta_zero_is_mdlm_ancestral_sampling():
    """With no remasking, ReMDM's steps are MDLM's: one position per step in expectation; with
    one step it is the product of marginals."""
    prompt = torch.tensor([0, 1])
    one = output_law(LANG, prompt, 3, strategy="remdm", steps=1, eta=0.0, temperature=1.0)
    marg = LANG.as_model()(torch.tensor([[0, 1, 3, 3, 3]]))[0, 2:, :3].softmax(-1)
    assert total_variation(one, product_law(marg)) < 1e-12


def test_wino_takes_back_a_draft_that_leave_one_out_doubts():
    # exact at temperature 0: a path; every round commits at least one, drafts can be revoked
    prompt = torch.tensor([[0, 1]])
    out = decode(LANG.as_model(), prompt, 4, LANG.mask_id, strategy="wino", wide=0.4, narrow=0.6)
    assert any(r.revoked.any() for r in out.history)
    assert all(r.committed.any() for r in out.history)
    assert out.nfe <= 8 and (out.tokens[:, 2:] != LANG.mask_id).all()
    law = output_law(LANG, prompt[0], 4, strategy="wino", wide=0.4, narrow=0.6)
    assert law.probs.tolist() == [1.0] and torch.equal(law.completions[0], out.tokens[0, 2:])


def test_cfg_scale_is_llada_guidance():
    model = RandomModel(8, seed=1)
    x = torch.tensor([[1, 2, MASK, MASK, MASK, MASK]])
    cfg = configure(x[:, :2], 4, MASK, cfg_scale=1.5)
    cond = model(x)
    un = model(torch.tensor([[MASK, MASK, MASK, MASK, MASK, MASK]]))
    got = model_logits(model, x, cfg)
    fin = torch.isfinite(cond)
    assert torch.allclose(got[fin], (un + 2.5 * (cond - un))[fin], rtol=1e-12)
    # scale 0 is plain decoding
    a = decode(model, x[:, :2], 4, MASK, cfg_scale=0.0)
    b = decode(model, x[:, :2], 4, MASK)
    assert torch.equal(a.tokens, b.tokens)


def test_eos_penalty_acts_before_the_choice():
    prompt = torch.tensor([0, 1])
    eos = 2
    # inf: the token never appears
    law = output_law(LANG, prompt, 3, strategy="random", steps=3, temperature=1.0, eos_id=eos,
                     eos_penalty=math.inf)
    assert all(eos not in k for k in law.as_dict())
    # one round at temperature 1: the product of marginals with p(eos) scaled by e^-penalty
    pen = math.log(4.0)
    one = output_law(LANG, prompt, 3, strategy="random", steps=1, temperature=1.0, eos_id=eos,
                     eos_penalty=pen)
    marg = LANG.as_model()(torch.tensor([[0, 1, 3, 3, 3]]))[0, 2:, :3].softmax(-1)
    marg[:, eos] /= 4.0
    marg = marg / marg.sum(-1, keepdim=True)
    assert total_variation(one, product_law(marg)) < 1e-12


# ---------------------------------------------------------------------- invariants
@pytest.mark.parametrize("strategy", [s for s in strategies() if s not in ("random", "remdm")])
def test_batched_decoding_is_row_invariant(strategy):
    model = RandomModel(11, seed=7)
    prompts = torch.randint(5, (4, 3), generator=torch.Generator().manual_seed(7))
    kw = {"steps": 4} if records.info(strategy).fixed_schedule else {}
    for schedule in ("even", "dream"):
        batch = decode(model, prompts, 8, MASK, strategy=strategy, block_length=4, schedule=schedule, **kw)
        for j in range(4):
            alone = decode(model, prompts[j:j + 1], 8, MASK, strategy=strategy, block_length=4,
                           schedule=schedule, **kw)
            assert torch.equal(alone.tokens[0], batch.tokens[j])


def test_batched_decoding_is_row_invariant_with_every_cache():
    from diffkit.discrete.cache import MODES, KVCacheModel
    from diffkit.nn import MaskedTransformer

    torch.manual_seed(0)
    net = MaskedTransformer(vocab_size=6, dim=16, depth=2, heads=2, max_len=16, mask_id=MASK).double().eval()
    prompts = torch.randint(5, (3, 4), generator=torch.Generator().manual_seed(1))
    for mode in MODES:
        for strategy, kw in (("confidence", {"steps": 4}), ("threshold", {"threshold": 0.3}),
                             ("eb", {"gamma": 0.5})):
            batch = decode(KVCacheModel(net, mode), prompts, 8, MASK, block_length=4, strategy=strategy, **kw)
            for j in range(3):
                alone = decode(KVCacheModel(net, mode), prompts[j:j + 1], 8, MASK, block_length=4,
                               strategy=strategy, **kw)
                assert torch.equal(alone.tokens[0], batch.tokens[j]), (mode, strategy)


_OPTION_VALUES = {
    "threshold": st.floats(0.01, 1.0), "factor": st.floats(0.01, 10.0), "gamma": st.floats(0.0, 5.0),
    "low_threshold": st.floats(0.0, 0.5), "alpha": st.floats(0.0, 5.0), "boost": st.floats(0.0, 2.0),
    "decay": st.floats(0.0, 1.0), "gap": st.floats(0.0, 20.0), "wide": st.floats(0.01, 0.5),
    "narrow": st.floats(0.5, 1.0), "draft": st.integers(1, 10), "max_rounds": st.integers(1, 12),
}


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_round_commits_whatever_the_options(data):
    """Every round of every rule except ReMDM commits at least one token per row that still has
    masks in its block, so the loops end; at temperature inf-like extremes too."""
    name = data.draw(st.sampled_from([s for s in strategies() if s not in ("remdm", "draft-verify")]))
    rec = records.info(name)
    opts = {o.name: data.draw(_OPTION_VALUES[o.name]) for o in rec.options if o.name in _OPTION_VALUES
            and data.draw(st.booleans())}
    if name == "hierarchy":
        opts["low_threshold"] = min(opts.get("low_threshold", 0.4), opts.get("threshold", 0.9))
    if name == "wino":
        opts["narrow"] = max(opts.get("narrow", 0.9), opts.get("wide", 0.6))
    temperature = data.draw(st.sampled_from([0.0, 1.0, 50.0, 1e300]))
    model = RandomModel(10, seed=data.draw(st.integers(0, 5)))
    out = decode(model, torch.tensor([[1, 2], [3, 4]]), 8, MASK, strategy=name, block_length=4,
                 temperature=temperature, steps=4 if rec.fixed_schedule else None,
                 generator=torch.Generator().manual_seed(0), **opts)
    assert (out.tokens[:, 2:] < 5).all()
    for rnd in out.history:
        had = ~torch.isnan(rnd.confidence)
        assert (rnd.committed.any(-1) | ~had.any(-1)).all()


# ---------------------------------------------------------------------- robustness
def test_decode_refuses_bad_arguments_naming_them():
    model = LANG.as_model()
    p = torch.tensor([[0, 1]])
    cases = [
        (dict(mask_id=None), "mask_id"), (dict(mask_id="3"), "mask_id"), (dict(mask_id=3.5), "mask_id"),
        (dict(gen_length=2.5), "gen_length"), (dict(steps=2.5), "steps"), (dict(steps=float("inf")), "steps"),
        (dict(temperature=float("inf")), "temperature"), (dict(temperature=float("nan")), "temperature"),
        (dict(strategy="factor", factor=float("nan")), "factor"),
        (dict(strategy="prophet", gap=float("nan")), "gap"),
        (dict(block_length=1.5), "block_length"), (dict(gen_length=10 ** 12), "gen_length"),
        (dict(schedule="cosine"), "schedule"), (dict(eps=0.0), "eps"), (dict(alg_temp=-1.0), "alg_temp"),
        (dict(strategy="threshold", alg_temp=1.0), "alg_temp"), (dict(rank_dtype="half"), "rank_dtype"),
        (dict(cfg_scale=float("nan")), "cfg_scale"), (dict(eos_id=3), "eos_id"),
        (dict(eos_id=0, eos_penalty=-1.0), "eos_penalty"), (dict(generator=3), "generator"),
        (dict(threshold=float("nan"), strategy="threshold"), "threshold"),
    ]
    for kw, name in cases:
        args = dict(gen_length=4, mask_id=3)
        args.update(kw)
        with pytest.raises((ValueError, TypeError), match=name):
            decode(model, p, args.pop("gen_length"), args.pop("mask_id"), **args)


@pytest.mark.parametrize("strategy", ["threshold", "factor", "confidence", "eb", "credit"])
def test_huge_temperature_and_steps_end_without_allocating(strategy):
    model = LANG.as_model()
    p = torch.tensor([[0, 1]])
    out = decode(model, p, 4, 3, strategy=strategy, temperature=1e300,
                 generator=torch.Generator().manual_seed(0))
    assert (out.tokens[:, 2:] < 3).all() and out.nfe <= 4
    if records.info(strategy).fixed_schedule:
        big = decode(model, p, 4, 3, strategy=strategy, steps=10 ** 12)
        assert torch.equal(big.tokens, decode(model, p, 4, 3, strategy=strategy, steps=4).tokens)
        assert big.nfe == 4


@settings(max_examples=60, deadline=None)
@given(gen_length=st.one_of(st.integers(-2, 6), st.floats(-1, 6), st.none(), st.text(max_size=2)),
       steps=st.one_of(st.integers(-2, 10 ** 15), st.floats(allow_nan=True), st.none()),
       temperature=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-1, 3)),
       mask_id=st.sampled_from([3, 3.0, 3.5, -1, None, "3", True]),
       strategy=st.sampled_from(list(strategies()) + ["nope"]))
def test_decode_fuzz_returns_valid_tokens_or_a_named_error(gen_length, steps, temperature, mask_id, strategy):
    """decode's arguments over wrong types, non-finite numbers and huge sizes: finite valid output
    or ValueError/TypeError naming the argument."""
    model = LANG.as_model()
    names = ("gen_length", "steps", "temperature", "mask_id", "strategy", "prompt", "multiple",
             "divisible", "draft-verify", "mask")
    try:
        out = decode(model, torch.tensor([[0, 1]]), gen_length, mask_id, steps=steps,
                     strategy=strategy, temperature=temperature, generator=torch.Generator().manual_seed(0))
    except (ValueError, TypeError) as e:
        assert any(n in str(e) for n in names), str(e)
        return
    assert (out.tokens[:, 2:] < 3).all() and (out.tokens[:, 2:] >= 0).all()
