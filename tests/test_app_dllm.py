"""The "dLLM decoding" tab: its endpoint called with gradio_client against the hub on 127.0.0.1.

What is checked is exact: the decode's rounds and committed sets follow the strategy's schedule
(LLaDA's even split for fixed-schedule strategies; one token per round and a lossless output for
draft-verify); the reported total variation equals the one computed here from
``diffkit.discrete.exact`` directly; at temperature 1, ``random`` with one token per round samples
the true law exactly (TV = 0), and a one-round decode draws the product of the marginals, whose
KL to the truth is the total correlation of the whole sequence (TC of a round = KL(joint ||
product)); out-of-range inputs are refused.
"""

from __future__ import annotations

import base64

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from apps import dllm_tab
from diffkit import discrete
from diffkit.discrete import exact

pytestmark = [pytest.mark.app, pytest.mark.timeout(180)]

API = "/" + dllm_tab.API_NAME
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def client(hub_url):
    return Client(hub_url, verbose=False)


def _call(client, **kw):
    """The endpoint called by keyword (named parameters), with 3 tokens in 3 rounds by default."""
    args = dict(gen_length=3, steps=3, temperature=0.0)
    args.update(kw)
    out = client.predict(api_name=API, **args)
    table, _slider, plot, values, note = out[:5]
    assert plot["type"] == "matplotlib"
    head, data = plot["plot"].split(",", 1)
    assert head == "data:image/png;base64" and base64.b64decode(data).startswith(PNG)
    assert "<table" in table and "round" in table
    return values, note, table


def _truth_tv(lang, prompt, g, strategy, temperature, **knobs):
    law = exact.output_law(lang, torch.tensor(prompt, dtype=torch.long), g, strategy=strategy,
                           temperature=temperature, **knobs)
    return exact.total_variation(law, exact.true_law(lang, torch.tensor(prompt), g)), law


@pytest.mark.parametrize("strategy, steps, rounds", [
    ("confidence", 3, 3), ("margin", 1, 1), ("entropy", 3, 3), ("random", 3, 3), ("prophet", 3, None),
])
def test_fixed_schedule_strategies_report_rounds_and_exact_error(client, strategy, steps, rounds):
    values, note, table = _call(client, strategy=strategy, steps=steps, gen_length=3)
    lang = discrete.HMMLanguage.default()
    assert values["strategy"] == strategy and values["gen_length"] == 3
    if rounds is not None:
        assert values["rounds"] == rounds == len(values["committed"])
        # LLaDA's schedule: 3 masks over `steps` rounds, evenly
        assert [len(c) for c in values["committed"]] == [3 // steps] * steps
    committed = sorted(i for c in values["committed"] for i in c)
    assert committed == [0, 1, 2]  # every position exactly once
    tv, law = _truth_tv(lang, [], 3, strategy, 0.0, steps=steps)
    assert values["exact"]["tv"] == pytest.approx(tv, abs=1e-12)
    # greedy: the law is a point mass on the decoded sequence, so TV = 1 - p(that sequence)
    p = float(torch.exp(lang.log_prob(torch.tensor([values["tokens"]]))))
    assert values["exact"]["tv"] == pytest.approx(1 - p, abs=1e-12)
    assert f"{values['rounds']} rounds" in note


def test_random_one_token_per_round_at_temperature_one_is_exact(client):
    values, _, _ = _call(client, strategy="random", steps=3, gen_length=3, temperature=1.0, seed=7)
    assert values["exact"]["tv"] == pytest.approx(0.0, abs=1e-12)
    assert values["exact"]["kl_model_true"] == pytest.approx(0.0, abs=1e-12)
    assert values["round_tc_nats"] == [0.0, 0.0, 0.0]  # one token a round: no correlation lost


def test_one_round_costs_exactly_the_total_correlation(client):
    """Committing all tokens at once at T = 1 draws the product of marginals:
    KL(product || ...) aside, KL(joint || product) = TC, the expected TC of the only round."""
    values, _, _ = _call(client, strategy="confidence", steps=1, gen_length=3, temperature=1.0)
    lang = discrete.HMMLanguage.default()
    comps, probs = exact.true_law(lang, torch.zeros(0, dtype=torch.long), 3)
    tc = exact.total_correlation(comps, probs, torch.full((3,), -1), [0, 1, 2])
    assert values["exact"]["kl_true_model"] == pytest.approx(tc, abs=1e-10)
    assert values["exact"]["tc"] == pytest.approx(tc, abs=1e-10)
    assert values["round_tc_nats"] == [pytest.approx(tc, abs=1e-6)]
    assert values["rounds"] == 1 and values["committed"] == [[0, 1, 2]]


def test_draft_verify_is_lossless_with_fewer_calls(client):
    dv, _, _ = _call(client, strategy="draft-verify", gen_length=5, steps=5)
    one, _, _ = _call(client, strategy="confidence", gen_length=5, steps=5)
    assert dv["tokens"] == one["tokens"]
    assert dv["exact"]["tv"] == pytest.approx(one["exact"]["tv"], abs=1e-12)
    assert one["nfe"] == 5 and dv["nfe"] < 5


def test_threshold_and_a_task(client):
    values, _, _ = _call(client, strategy="threshold", threshold=0.5, gen_length=4, steps=4)
    assert 1 <= values["rounds"] <= 4 and values["knobs"] == {"threshold": 0.5}
    tv, _ = _truth_tv(discrete.HMMLanguage.default(), [], 4, "threshold", 0.0, threshold=0.5)
    assert values["exact"]["tv"] == pytest.approx(tv, abs=1e-12)
    # copy is deterministic given the prompt: greedy decoding of the oracle is exact and correct
    values, _, _ = _call(client, language="copy", strategy="confidence", steps=1, gen_length=2)
    assert values["gen_length"] == 4 and values["correct"] is True
    assert values["exact"]["tv"] == pytest.approx(0.0, abs=1e-12)
    assert values["tokens"][-4:] == values["prompt"][1:]


@pytest.mark.parametrize("kwargs, message", [
    ({"gen_length": 9}, "gen_length must be"),
    ({"steps": 9}, "steps must be"),
    ({"strategy": "beam"}, "strategy must be one of"),
    ({"language": "latin"}, "language must be one of"),
    ({"temperature": 3.0}, "temperature must be"),
    ({"seed": 10**6}, "seed must be"),
    ({"seed": 3.7}, "not whole"),
    ({"eta": -1.0}, "eta must be"),
])
def test_bounds_are_refused_by_name(client, kwargs, message):
    with pytest.raises(AppError, match=message):
        _call(client, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 3, "gen_length": 4, "block_length": 2}, "multiple of the 2 blocks"),
    ({"block_length": 3, "gen_length": 4}, "does not divide"),
    ({"strategy": "draft-verify", "temperature": 1.0}, "temperature 0 only"),
    ({"gen_length": 5, "temperature": 0.5}, f"-> {dllm_tab.MAX_GEN_SAMPLED}"),
])
def test_combinations_that_do_not_fit_are_adjusted_and_said(client, kwargs, message):
    values, note, _ = _call(client, **kwargs)
    assert message in note


def test_api_is_named_and_takes_numbers(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"][API]
    names = [p["parameter_name"] for p in api["parameters"]]
    assert names == list(dllm_tab.NAMES)
    temp = api["parameters"][names.index("temperature")]
    assert temp["type"]["type"] == "number"
    # by keyword, a temperature as a number and a strategy's own knob
    values, _, _ = _call(client, strategy="eb", gamma=0.5, temperature=0.5)
    assert values["knobs"] == {"gamma": 0.5} and values["temperature"] == 0.5


def test_round_view_is_named_and_strict(client):
    """The rounds table's cut, a view control over the session's last run (here the client's
    last call of the endpoint: 4 tokens in 4 rounds): ``upto`` by keyword, rows for rounds
    0..upto, out of range refused."""
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    view = "/" + dllm_tab.ROUND_API_NAME
    assert [p["parameter_name"] for p in api[view]["parameters"]] == ["upto"]
    values, _, _ = _call(client, gen_length=4, steps=4)
    assert values["rounds"] == 4
    for upto in (0, 1, 4):
        html = client.predict(upto=upto, api_name=view)
        assert html.count("<tr") == 1 + upto + 1  # the header, round 0 .. upto
    with pytest.raises(AppError, match=r"upto must be a whole number in 0\.\.16; got 17"):
        client.predict(upto=17, api_name=view)


@pytest.mark.parametrize("strategy", [s for s in discrete.strategies()])
def test_every_registered_strategy_decodes_with_its_own_knobs(client, strategy):
    values, _, _ = _call(client, strategy=strategy)
    rec = discrete.strategy_records.info(strategy)
    assert set(values["knobs"]) == {o.name for o in rec.options} | ({"steps"} if rec.fixed_schedule else set())
    grid = [(s, k) for s, k in exact.strategy_grid(3, None, 0.0)
            if not discrete.strategy_records.info(s).remasks or s == strategy]
    assert values["reference_points"] == len(grid)
    assert len(values["tokens"]) == 3 and all(t < 3 for t in values["tokens"])


def test_transformer_on_a_task_is_bounded_to_greedy(client):
    if not dllm_tab.transformer_available("sort"):
        pytest.skip("no shipped tasks checkpoint")
    values, note, _ = _call(client, language="sort", model="transformer", temperature=1.0)
    assert "ran temperature 0" in note and values["temperature"] == 0.0
    values, _, _ = _call(client, language="sort", model="transformer", strategy="random", steps=2)
    assert values["rounds"] == 2 and [len(c) for c in values["committed"]] == [2, 2]


def test_sampling_length_is_clamped_and_said():
    fitted = dllm_tab.fit("hmm", "oracle", "confidence", 5, 5, 0, 1.0, 0, dllm_tab.KNOB_DEFAULTS)
    assert fitted[2] == dllm_tab.MAX_GEN_SAMPLED and "->" in fitted[-1]


def test_tab_is_mounted_in_the_hub():
    from apps import hub
    assert dllm_tab in hub.TABS
    assert dllm_tab.TITLE == "dLLM decoding" and callable(dllm_tab.build)


def test_transformer_is_measured_against_the_true_law(client):
    """With the shipped network as the model, the reported TV is that of the network-driven
    decoder's exact law (enumerated with the network's logits) to the language's true law."""
    if not dllm_tab.transformer_available("hmm"):
        pytest.skip("no shipped hmm-default checkpoint")
    values, _, _ = _call(client, model="transformer", strategy="margin", gen_length=3, steps=3)
    lang = discrete.HMMLanguage.default()
    net = dllm_tab.model_for("hmm", "transformer")
    law = exact.output_law(lang, torch.zeros(0, dtype=torch.long), 3, strategy="margin", steps=3,
                           model=net)
    truth = exact.true_law(lang, torch.zeros(0, dtype=torch.long), 3)
    assert values["model"] == "transformer"
    assert values["exact"]["tv"] == pytest.approx(exact.total_variation(law, truth), abs=1e-9)
    assert tuple(values["tokens"]) in law.as_dict()  # greedy: the decode is the law's atom


def test_frames_replay_the_decode_and_the_front_is_non_dominated():
    """diffkit.viz.decoding: the replay's last state is the output and each round adds exactly
    its committed positions; the Pareto front keeps exactly the non-dominated points."""
    from diffkit.viz import decoding as dviz

    lang = discrete.HMMLanguage.default()
    out = discrete.decode(lang.as_model(), torch.tensor([0, 2]), 6, lang.mask_id, steps=4,
                          strategy="confidence", block_length=3, temperature=1.0,
                          generator=torch.Generator().manual_seed(0))
    fr = dviz.unmasking_frames(out, 2, lang.mask_id)
    assert torch.equal(fr.states[-1], out.tokens[0]) and fr.rounds == out.rounds == 4
    assert (fr.states[0, 2:] == lang.mask_id).all() and fr.states[0, :2].tolist() == [0, 2]
    for r, rnd in enumerate(out.history, start=1):
        changed = fr.states[r] != fr.states[r - 1]
        assert torch.equal(changed, rnd.committed[0])
    pts = [{"rounds": 1.0, "tv": 0.5}, {"rounds": 2.0000000000000004, "tv": 0.1},
           {"rounds": 2.0, "tv": 0.3}, {"rounds": 3.0, "tv": 0.2}, {"rounds": 4.0, "tv": 0.0}]
    front = dviz.pareto_front(pts)
    assert [(p["rounds"], p["tv"]) for p in front] == [(1.0, 0.5), (2.0000000000000004, 0.1),
                                                        (4.0, 0.0)]
