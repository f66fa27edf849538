"""ParallelBench-style tasks: exact answer sets, scores and the exact uniform-answer oracle."""

import math

import pytest
import torch

from diffkit.discrete import TASKS, get_task, latin_squares

pytestmark = pytest.mark.usefixtures("one_thread")


def test_latin_squares_count_and_validity():
    squares = torch.tensor(latin_squares(4)).reshape(-1, 4, 4)
    assert squares.shape[0] == 576  # the number of 4x4 Latin squares
    srt = torch.arange(4)
    assert (squares.sort(1).values == srt[:, None]).all() and (squares.sort(2).values == srt).all()


@pytest.mark.parametrize("name,size", [("copy", 1), ("reverse", 1), ("sort", 1), ("shuffle", 24),
                                       ("replace-index", 1), ("latin", 24)])
def test_answer_sets_and_scores(name, size):
    task = get_task(name)
    prompts, answers = task.sample(20, torch.Generator().manual_seed(0))
    assert prompts.shape == (20, task.prompt_length) and answers.shape == (20, task.answer_length)
    assert (task.score(prompts, answers) == 1).all()
    full = torch.cat([prompts, answers], 1)
    assert (task.score(prompts, full) == 1).all()
    for p, a in zip(prompts, answers):
        valid = task.answers(p)
        assert valid.shape[0] == size
        items = p[1:5].tolist() if name == "latin" else p[1:1 + task.length].tolist()
        if name == "copy":
            assert a.tolist() == items
        elif name == "reverse":
            assert a.tolist() == items[::-1]
        elif name == "sort":
            assert a.tolist() == sorted(items)
        elif name == "shuffle":
            assert sorted(a.tolist()) == sorted(items)
        elif name == "replace-index":
            j, b = int(p[-2]) - task.symbols, int(p[-1])
            assert a.tolist() == items[:j] + [b] + items[j + 1:]
        else:
            square = torch.tensor(items + a.tolist()).reshape(4, 4)
            assert (square.sort(0).values == torch.arange(4)[:, None]).all()
            assert (square.sort(1).values == torch.arange(4)).all()
    wrong = answers.clone()
    wrong[:, 0] = (wrong[:, 0] + 1) % task.symbols
    if name in ("copy", "reverse", "sort", "replace-index"):
        assert (task.score(prompts, wrong) == 0).all()


@pytest.mark.parametrize("name", ["shuffle", "latin", "copy"])
def test_oracle_chain_rule_gives_uniform_law(name):
    """Unmasking one answer token at a time with the oracle's conditionals multiplies out to 1/K
    for every valid answer (the chain rule), and the conditionals are exact counts."""
    task = get_task(name)
    prompt = task.sample_prompts(1, torch.Generator().manual_seed(1))[0]
    valid = task.answers(prompt)
    model = task.as_model()
    for a in valid[:6]:
        x = torch.cat([prompt, torch.full((task.answer_length,), task.mask_id)]).unsqueeze(0)
        logp = 0.0
        for i in torch.randperm(task.answer_length, generator=torch.Generator().manual_seed(2)):
            logits = model(x)
            assert logits.shape == (1, task.prompt_length + task.answer_length, task.vocab_size + 1)
            logp += logits[0, task.prompt_length + i, a[i]].item()
            x[0, task.prompt_length + i] = a[i]
        assert math.isclose(logp, -math.log(valid.shape[0]), abs_tol=1e-12)
        assert task.log_prob(x).item() == pytest.approx(-math.log(valid.shape[0]), abs=1e-12)


def test_oracle_conditionals_and_inconsistent_fallback():
    task = get_task("shuffle")
    prompt = torch.tensor([task.task_token, 0, 1, 2, 3])
    x = torch.cat([prompt, torch.tensor([2, task.mask_id, task.mask_id, task.mask_id])])
    m = task.marginals(x, task.mask_id)[0]
    assert torch.allclose(m[6, :4], torch.tensor([1 / 3, 1 / 3, 0, 1 / 3], dtype=torch.float64))
    assert math.isclose(task.log_prob(x.unsqueeze(0)).item(), math.log(6 / 24))
    bad = torch.cat([prompt, torch.tensor([2, 2, task.mask_id, task.mask_id])])
    m = task.marginals(bad, task.mask_id)[0]
    assert torch.allclose(m[7, :4], torch.full((4,), 0.25, dtype=torch.float64))
    assert task.log_prob(bad.unsqueeze(0)).item() == -math.inf
    with pytest.raises(ValueError):
        task.marginals(torch.cat([prompt[:-1], torch.tensor([task.mask_id]), prompt[1:]]), task.mask_id)
    with pytest.raises(ValueError):
        get_task("nope")
    assert len(TASKS) == 6
    assert len({get_task(n).vocab_size for n in TASKS}) == 1  # one shared vocabulary
