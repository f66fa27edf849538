"""Fuzzing the public API: bad input never crashes, hangs or returns nan in silence.

Covered: ``diffkit`` (``sample``), ``paths``, ``analytic``, ``samplers``, ``discrete``, ``train``, and
the learning and control modules ``data``, ``metrics``, ``guidance``, ``likelihood``, ``inverse``
and ``fewstep``.

Every row of :data:`TABLE` is one public function and one of its arguments, with a family of bad
values (wrong types, ``nan``/``inf``, out-of-range and huge sizes, non-whole floats for integers,
bad shapes, unknown or unhashable names; see ``tests/fuzzing.py``). Each case (one row, one bad
value, the other arguments valid) runs in a worker thread under a time limit and must either
return finite output or raise ``ValueError``/``TypeError`` whose message names the argument.

``test_bad_values`` tries each row's explicit values; ``test_generated_bad_values`` draws more
with hypothesis (derandomized under ``CI=true``, see ``tests/conftest.py``). The number of cases
is printed at the end of the module (``fuzz: N cases ...``).

Adding a module
---------------
Append one line per public function to :data:`TABLE` with :func:`fuzzing.rows`: a label, the
function, a dict of valid arguments, and ``argument=family`` for each argument to fuzz::

    TABLE += rows("data.toy", data.toy, dict(name="moons", n=64), name=name(),
                  n=integer(0, data.MAX_N))

A method is a bound method (``rows("Gaussian.score", G.score, ...)``); a positional-only or
computed call is a lambda taking the argument by keyword.
"""

from __future__ import annotations

import importlib
import math

import pytest
import torch
from fuzzing import (
    COUNTS,
    Family,
    Row,
    anything,
    boolean,
    check,
    function,
    generator,
    integer,
    name,
    real,
    row,
    rows,
    tensor,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import diffkit
from diffkit import (
    analytic,
    data,
    discrete,
    fewstep,
    guidance,
    inverse,
    likelihood,
    metrics,
    paths,
    samplers,
    train,
)

F64 = torch.float64
DECODING = importlib.import_module("diffkit.discrete.decode")  # the module (discrete.decode is the function)
NAN, INF = math.nan, math.inf

#: cases per row drawn by hypothesis on top of the explicit ones
GENERATED = 3

# -- valid arguments the rows start from ---------------------------------------------------------
PATH = "vp-linear"
MEAN = torch.tensor([1.0, -1.0], dtype=F64)
COV = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=F64)
G = analytic.Gaussian(MEAN, COV)
MIX = analytic.GaussianMixture(torch.tensor([0.4, 0.6], dtype=F64),
                               torch.tensor([[1.0, 1.0], [-1.0, 0.0]], dtype=F64),
                               torch.stack([0.2 * torch.eye(2, dtype=F64), 0.3 * torch.eye(2, dtype=F64)]))
X = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
D = G.denoiser(PATH)

NOT_PD = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=F64)          # eigenvalues 3, -1
NOT_SYMMETRIC = torch.tensor([[1.0, 0.5], [0.0, 1.0]], dtype=F64)
SINGULAR = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=F64)
HUGE = Family((10**9, 10**12, float(10**12), 2**63))
TIME = real(0.0, 1.0) + tensor((3,))
COVARIANCE = tensor((2, 2)) + Family((NOT_PD, NOT_SYMMETRIC, SINGULAR, torch.eye(3, dtype=F64)))
GAUSSIAN = anything(MIX, (MEAN,), (MEAN, COV, COV), (MEAN, NOT_PD), (MEAN, NOT_SYMMETRIC),
                    (torch.full((2,), NAN, dtype=F64), COV), (MEAN, torch.full((2, 2), INF, dtype=F64)),
                    (torch.zeros(3, dtype=F64), torch.eye(3, dtype=F64)), (MEAN, torch.eye(3, dtype=F64)))
SHAPE = Family((10**12, (10**6, 10**6), -1, 2.5, "3", None, NAN, (2, -3), (2, 2.5)))
FLOAT_DTYPE = Family((torch.long, torch.bool, "float64", None, 3))

TABLE: list[Row] = []

# -- diffkit.sample and diffkit.samplers ---------------------------------------------------------
SAMPLE = dict(denoiser=D, path=PATH, x_start=X, solver="ddim", steps=3, grid="logsnr")
TABLE += rows("sample", diffkit.sample, SAMPLE, denoiser=function(), path=name(), solver=name(),
              steps=integer(1, paths.MAX_STEPS), grid=name() + tensor((4,)), generator=generator(),
              return_trajectory=boolean())
TABLE += [row(f"sample[{s}]", diffkit.sample, {**SAMPLE, "solver": s}, "x_start", tensor((3, 2)))
          for s in samplers.available()]
TABLE += rows("sample[ddim]", diffkit.sample, SAMPLE, eta=real(0.0, 1.0))
TABLE += rows("sample[heun]", diffkit.sample, {**SAMPLE, "solver": "heun", "churn": 1.0},
              churn=real(0.0), s_noise=real(0.0, 10.0), s_tmin=real(0.0), s_tmax=real(0.0, allow_inf=True))
TABLE += rows("sample[pc]", diffkit.sample, {**SAMPLE, "solver": "pc"}, snr=real(0.0, 0.5),
              corrector_steps=integer(0, 100), predictor=name())
TABLE += rows("sample[adaptive]", diffkit.sample, {**SAMPLE, "solver": "adaptive"},
              rtol=real(1e-12, 1.0), atol=real(1e-12, 1.0), method=name())
TABLE += rows("sample[dpm++3m]", diffkit.sample, {**SAMPLE, "solver": "dpm++3m"}, reference=boolean())
TABLE += rows("samplers.info", samplers.info, {}, name=name(), aliases={"name": ("solver",)})
TABLE += rows("samplers.get", samplers.get, {}, name=name(), aliases={"name": ("solver",)})
TABLE += rows("samplers.make_grid", samplers.make_grid, dict(grid="karras", steps=4, path=PATH),
              grid=name() + tensor((4,)), steps=integer(1, paths.MAX_STEPS), path=name())
LAW = dict(solver="ddim", path=PATH, data=G, steps=3, grid="logsnr")
for label, fn in (("sampler_law", analytic.sampler_law), ("sampler_moments", analytic.sampler_moments),
                  ("affine_map", analytic.affine_map)):
    TABLE += rows(label, fn, LAW, solver=name(), path=name(), data=anything(MIX),
                  steps=integer(1, paths.MAX_STEPS), grid=name() + tensor((4,)))
TABLE += rows("sampler_law", analytic.sampler_law, LAW, start=anything(MIX))

# -- diffkit.paths -------------------------------------------------------------------------------
TABLE += rows("paths.get", paths.get, {}, name=name(), aliases={"name": ("path",)})
TABLE += rows("paths.VPLinear", paths.VPLinear, {}, beta_min=real(0.0, paths.MAX_BETA, low_open=True),
              beta_max=real(0.0, paths.MAX_BETA, low_open=True))
TABLE += rows("paths.VPCosine", paths.VPCosine, {}, logsnr_min=real(*paths.COSINE_LOGSNR_MIN_RANGE))
TABLE += rows("paths.VE", paths.VE, {}, sigma_min=real(paths.MIN_SIGMA, paths.MAX_SIGMA),
              sigma_max=real(paths.MIN_SIGMA, paths.MAX_SIGMA))
TABLE += rows("paths.EDM", paths.EDM, {}, sigma_max=real(0.0, paths.MAX_SIGMA, low_open=True))
TABLE += rows("paths.grid", paths.grid, dict(grid="karras", steps=4, path=PATH),
              grid=name() + tensor((4,)), steps=integer(1, paths.MAX_STEPS), path=name(),
              rho=real(*paths.RHO_RANGE) + Family((0.0,)), logsnr_min=real(),
              logsnr_max=real(high=paths.MAX_LOGSNR), dtype=FLOAT_DTYPE)
TABLE += rows("paths.retime", paths.retime, dict(src=PATH, dst="ve", t=0.5), src=name(), dst=name(), t=TIME)
TABLE += rows("paths.check_time", paths.check_time, dict(t=0.5), t=TIME)
TABLE += rows("paths.as_time", paths.as_time, dict(t=0.5), t=anything())
TABLE += [row("paths.expand", paths.expand, dict(coef=torch.ones(3), x=X), "coef",
              anything(torch.ones(5), torch.ones(3, 3)), aliases=("t",))]
PATH_TIME = Family((NAN, -0.5, None, "0.5", [NAN], torch.tensor([0.5, NAN]), torch.tensor([-1.0]), 1j, object()))
for p in paths.NAMES:
    obj = paths.get(p)
    for method in ("alpha", "sigma", "dalpha", "dsigma", "logsnr", "dlogsnr"):
        TABLE.append(row(f"{p}.{method}", getattr(obj, method), {}, "t", PATH_TIME))
    TABLE.append(row(f"{p}.t_from_logsnr", obj.t_from_logsnr, {}, "logsnr",
                     Family((NAN, None, "1", torch.tensor([0.0, NAN]), 1j))))
    TABLE += rows(f"{p}.prior", obj.prior, dict(shape=(4, 2)), shape=SHAPE, dtype=FLOAT_DTYPE,
                  generator=generator())

# -- diffkit.analytic ----------------------------------------------------------------------------
TABLE += rows("Gaussian", analytic.Gaussian, dict(mean=MEAN, cov=COV), mean=tensor((2,)),
              cov=COVARIANCE)
TABLE += rows("GaussianMixture", analytic.GaussianMixture,
              dict(weights=MIX.weights, means=MIX.means, covs=MIX.covs),
              weights=tensor((2,)) + Family((torch.tensor([-1.0, 2.0], dtype=F64), torch.zeros(2, dtype=F64))),
              means=tensor((2, 2)), covs=tensor((2, 2, 2)) + Family((torch.stack([NOT_PD, COV]),)))
for label, oracle in (("Gaussian", G), ("GaussianMixture", MIX)):
    TABLE += rows(f"{label}.sample", oracle.sample, dict(n=4), n=integer(0, analytic.MAX_SAMPLES),
                  generator=generator())
    TABLE += rows(f"{label}.log_prob", oracle.log_prob, dict(x=X), x=tensor((3, 2)))
    for method in ("score", "denoise", "velocity", "marginal_log_prob"):
        TABLE += rows(f"{label}.{method}", getattr(oracle, method), dict(x=X, t=0.5, path=PATH),
                      x=tensor((3, 2)), t=TIME, path=name())
    TABLE += rows(f"{label}.marginal", oracle.marginal, dict(t=0.5, path=PATH), t=real(0.0, 1.0),
                  path=name())
    TABLE += rows(f"{label}.denoiser", oracle.denoiser, dict(path=PATH), path=name())
TABLE += rows("Gaussian.flow_map", G.flow_map, dict(x=X, s=0.8, t=0.3, path=PATH), x=tensor((3, 2)),
              s=real(0.0, 1.0), t=real(0.0, 1.0), path=name())
TABLE += rows("Gaussian.elbo", G.elbo, dict(x0=X, path=PATH), x0=tensor((3, 2)), path=name(),
              t_min=real(0.0, 1.0, low_open=True), t_max=real(0.0, 1.0, low_open=True))
TABLE += rows("Gaussian.denoising_error", G.denoising_error, dict(m_hat=MEAN, cov_hat=COV, t=0.5, path=PATH),
              m_hat=tensor((2,)), cov_hat=tensor((2, 2)), t=TIME, path=name())
for label, fn in (("w2_gaussian", analytic.w2_gaussian), ("kl_gaussian", analytic.kl_gaussian)):
    TABLE += rows(label, fn, dict(p=G, q=G), p=GAUSSIAN, q=GAUSSIAN)
TABLE += rows("sqrtm_psd", analytic.sqrtm_psd, dict(c=COV), c=COVARIANCE)

# -- diffkit.discrete ----------------------------------------------------------------------------
HMM = discrete.HMMLanguage.default()
V = HMM.vocab_size
MODEL = HMM.as_model()
PROMPT = torch.tensor([[0, 1]])
DECODE = dict(model=MODEL, prompt=PROMPT, gen_length=4, mask_id=V, steps=4, strategy="confidence")
TOKENS = tensor((1, 2), floating=False, low=0, high=V - 1)
TOKENS_ONLY = dict(output=lambda out: out.tokens)  # a round's confidences are nan where not scored
TABLE += rows("decode", discrete.decode, DECODE, **TOKENS_ONLY, model=function(), prompt=TOKENS,
              gen_length=integer(1) + HUGE, mask_id=integer(0) + Family((None, 0, 3.5, "3")),
              steps=integer(1, DECODING.MAX_STEPS) + HUGE, strategy=name(),
              block_length=integer(1) + HUGE + Family((3,)),
              temperature=real(0.0, allow_inf=False), generator=generator())
for strategy in discrete.strategies():
    TABLE += rows(f"decode[{strategy}]", discrete.decode, {**DECODE, "strategy": strategy}, **TOKENS_ONLY,
                  temperature=real(0.0))
TABLE += rows("decode[threshold]", discrete.decode, {**DECODE, "strategy": "threshold"}, **TOKENS_ONLY,
              threshold=real(0.0, 1.0, low_open=True))
TABLE += rows("decode[factor]", discrete.decode, {**DECODE, "strategy": "factor"}, **TOKENS_ONLY,
              factor=real(0.0, low_open=True))
TABLE += rows("decode[prophet]", discrete.decode, {**DECODE, "strategy": "prophet"}, **TOKENS_ONLY, gap=real(),
              reduce=name())
TABLE += rows("decode[draft-verify]", discrete.decode, {**DECODE, "strategy": "draft-verify"}, **TOKENS_ONLY,
              draft=integer(1) + HUGE)
TABLE += rows("num_transfer_tokens", discrete.num_transfer_tokens, dict(masked=torch.tensor([4]), steps=2),
              masked=anything(torch.tensor([-1]), torch.tensor([0.5])), steps=integer(1, DECODING.MAX_LENGTH))
PROBS = HMM.initial
TABLE += rows("HMMLanguage", discrete.HMMLanguage,
              dict(initial=HMM.initial, transition=HMM.transition, emission=HMM.emission),
              initial=anything(torch.tensor([NAN, 1.0]), torch.tensor([-0.5, 1.5])),
              transition=anything(torch.full_like(HMM.transition, NAN)),
              emission=anything(torch.full_like(HMM.emission, INF)))
TABLE += rows("HMMLanguage.random", discrete.HMMLanguage.random, dict(states=2, vocab=3),
              states=integer(1, discrete.hmm.MAX_STATES), vocab=integer(1, discrete.hmm.MAX_VOCAB),
              concentration=real(0.0, low_open=True))
TABLE += rows("HMMLanguage.sample", HMM.sample, dict(n=2, length=3), n=integer(0, discrete.hmm.MAX_TOKENS),
              length=integer(0, discrete.hmm.MAX_TOKENS) + Family((discrete.hmm.MAX_TOKENS,)),
              generator=generator())
TABLE += rows("HMMLanguage.log_prob", HMM.log_prob, dict(tokens=torch.tensor([[0, 1, 2]])),
              tokens=tensor((1, 3), floating=False, low=0, high=V - 1))
TABLE += rows("HMMLanguage.marginals", HMM.marginals, dict(tokens=torch.tensor([[0, V, 2]]), mask_id=V),
              tokens=tensor((1, 3), floating=False, low=0, high=V), mask_id=integer(0) + Family((3.5, "3")))
TABLE += rows("HMMLanguage.as_model", HMM.as_model, {}, mask_id=Family((0, -1, 3.5, "3", NAN, [V])))
TABLE += rows("HMMLanguage.completion_law", HMM.completion_law, dict(prompt=torch.tensor([0]), gen_length=2),
              gen_length=integer(0) + HUGE)
TABLE += rows("HMMLanguage.entropy", HMM.entropy, dict(length=2), length=integer(0) + HUGE)
TABLE += rows("all_sequences", discrete.all_sequences, dict(vocab=2, length=2), vocab=integer(1) + HUGE,
              length=integer(0) + HUGE)
TABLE += rows("get_task", discrete.get_task, dict(name="copy"), aliases={"name": ("task",)}, name=name(),
              symbols=integer(2, discrete.tasks.MAX_SYMBOLS), length=integer(1, discrete.tasks.MAX_TASK_LENGTH))
TABLE += rows("get_schedule", discrete.get_schedule, {}, aliases={"name": ("schedule",)}, name=name())
TABLE += rows("nelbo_weight", discrete.nelbo_weight, dict(t=0.5), t=TIME, schedule=name())
TABLE += rows("mask_tokens", discrete.mask_tokens, dict(x0=torch.tensor([[0, 1, 2]]), t=0.5, mask_id=V),
              x0=tensor((1, 3), floating=False, low=0), t=TIME, mask_id=integer(0) + Family((3.5, "3")),
              schedule=name())
TABLE += rows("mdlm_loss", discrete.mdlm_loss, dict(model=MODEL, x0=torch.tensor([[0, 1, 2]]), mask_id=V),
              model=function(), x0=tensor((1, 3), floating=False, low=0, high=V - 1), schedule=name(),
              t_min=real(0.0, 1.0, low_open=True), reduction=name())
TABLE += rows("ancestral_sample", discrete.ancestral_sample,
              dict(model=MODEL, prompt=PROMPT, length=3, mask_id=V, steps=3),
              model=function(), prompt=TOKENS, length=integer(0, discrete.masking.MAX_LENGTH),
              mask_id=integer(0) + Family((3.5,)), steps=integer(1, discrete.masking.MAX_STEPS), schedule=name(), temperature=real(0.0, low_open=True))
TABLE += rows("output_law", discrete.output_law, dict(oracle=HMM, prompt=torch.tensor([0]), gen_length=2),
              gen_length=integer(1) + HUGE, strategy=name(), temperature=real(0.0),
              max_states=integer(1, discrete.walk.MAX_WALK_STATES))
TABLE += rows("monte_carlo", discrete.monte_carlo, dict(oracle=HMM, prompt=torch.tensor([0]), gen_length=2, n=4),
              n=integer(1) + HUGE, gen_length=integer(1) + HUGE, strategy=name())
TABLE += rows("bits_to_rounds", discrete.bits_to_rounds, dict(information_bits=4.0, budget_bits=2.0),
              information_bits=real(0.0), budget_bits=real(0.0, low_open=True))
TABLE += rows("strategy_grid", discrete.strategy_grid, dict(gen_length=4), gen_length=integer(1) + HUGE,
              block_length=integer(1) + HUGE, temperature=real(0.0))
TABLE += rows("load_pretrained", discrete.load_pretrained, dict(name="hmm-default"),
              aliases={"name": ("checkpoint",)}, name=name(), dtype=FLOAT_DTYPE)
TABLE += rows("logits_from_probs", discrete.logits_from_probs, dict(probs=PROBS, width=V + 1),
              probs=tensor((2,)), width=integer(len(PROBS)) + HUGE)
TABLE += rows("total_variation", discrete.total_variation, dict(p={(0,): 1.0}, q={(0,): 1.0}),
              p=anything(), q=anything())

# -- diffkit.train -------------------------------------------------------------------------------


def _tiny_model():
    return torch.nn.Linear(2, 1)


def _train(**kwargs):
    model = kwargs.pop("model", None) or _tiny_model()
    loss_fn = kwargs.pop("loss_fn", lambda m: m(torch.ones(4, 2)).pow(2).mean())
    return train.train(model, loss_fn, progress=False, **kwargs)


TABLE += rows("train", _train, dict(steps=2), steps=integer(1, train.MAX_STEPS), lr=real(0.0, low_open=True),
              weight_decay=real(0.0), warmup=integer(0, train.MAX_STEPS),
              grad_clip=real(0.0, low_open=True) + Family((-1.0,)), ema_decay=real(0.0, 1.0, high_open=True),
              log_every=integer(1, train.MAX_STEPS))
TABLE += rows("train", lambda **kw: train.train(**kw), dict(model=_tiny_model(), steps=2, progress=False,
              loss_fn=lambda m: m(torch.ones(4, 2)).pow(2).mean()), model=anything(), loss_fn=function())
TABLE += rows("lr_at", train.lr_at, dict(step=3, steps=10, lr=1e-3), step=integer(0, train.MAX_STEPS),
              steps=integer(1, train.MAX_STEPS), lr=real(0.0, low_open=True), warmup=integer(0, train.MAX_STEPS),
              min_ratio=real(0.0, 1.0))
TABLE += rows("EMA", train.EMA, dict(model=_tiny_model()), model=anything(),
              decay=real(0.0, 1.0, high_open=True))
TABLE += [row("load_checkpoint", train.load_checkpoint, {}, "path",
              anything(3.5, "/nonexistent/ckpt", "", "\x00bad"), aliases=("checkpoint", "nonexistent"),
              errors=(FileNotFoundError,))]

# -- control: guidance, likelihood, inverse problems, few-step; learning: data and metrics ------
LABELLED = analytic.GaussianMixture(torch.tensor([0.4, 0.6], dtype=F64),
                                    torch.tensor([[1.0, 1.0], [-1.0, 0.0]], dtype=F64),
                                    torch.stack([0.2 * torch.eye(2, dtype=F64), 0.3 * torch.eye(2, dtype=F64)]),
                                    labels=torch.tensor([0, 1]))
MASK = torch.tensor([1.0, 0.0], dtype=F64)
A = inverse.mask_operator(MASK)
Y = (A @ X.T).T


def _at(make):
    """A denoiser combinator's row: build it with the arguments and call it once (x, t = 0.5)."""
    return lambda **kw: make(**kw)(X, 0.5)


TABLE += rows("guidance.cfg", _at(guidance.cfg), dict(conditional=D, unconditional=D, scale=2.0),
              conditional=function(), unconditional=function(), scale=real())
TABLE += rows("guidance.interval", _at(guidance.interval),
              dict(conditional=D, unconditional=D, scale=2.0, t_lo=0.2, t_hi=0.8),
              scale=real(), t_lo=real(0.0, 1.0), t_hi=real(0.0, 1.0))
TABLE += rows("guidance.classifier", _at(guidance.classifier),
              dict(denoiser=D, log_prob_class=lambda x, t: x.sum(-1), scale=2.0, path=PATH),
              denoiser=function(), log_prob_class=function(), scale=real(), path=name())
TABLE += rows("guidance.tilted_gap", guidance.tilted_gap,
              dict(mixture=LABELLED, c=0, scale=2.0, path=PATH, box=(-3.0, 3.0, -3.0, 3.0), n=8),
              mixture=anything(), c=integer(0, 1), scale=real(0.0), path=name(), n=integer(2, guidance.MAX_GRID),
              level=real(0.0, 1.0, low_open=True, high_open=True))
TABLE += rows("guidance.knn_precision_coverage", guidance.knn_precision_coverage,
              dict(real=X, fake=X + 0.1, k=1), real=tensor((3, 2)), fake=tensor((3, 2)), k=integer(1, 2))
TABLE += rows("likelihood.log_prob", likelihood.log_prob, dict(denoiser=D, path=PATH, x=X, rtol=1e-4, atol=1e-4),
              denoiser=function(), path=name(), x=tensor((3, 2)), method=name(), rtol=real(0.0, 1.0, low_open=True),
              atol=real(0.0, 1.0, low_open=True), probes=integer(1, 4096), t_min=real(0.0, 1.0, low_open=True))
TABLE += rows("likelihood.elbo", likelihood.elbo, dict(denoiser=D, path=PATH, x0=X, samples=4),
              output=lambda r: {k: v for k, v in r.items()},
              denoiser=function(), path=name(), x0=tensor((3, 2)), samples=integer(1) + HUGE,
              t_min=real(0.0, 1.0, low_open=True), t_max=real(0.0, 1.0, low_open=True))
TABLE += rows("likelihood.bits_per_dim", likelihood.bits_per_dim, dict(log_prob_nats=torch.tensor([-3.0]), dim=2),
              log_prob_nats=tensor((1,)), dim=integer(1), bin_width=real(0.0, low_open=True))
TABLE += rows("likelihood.dequantise", likelihood.dequantise, dict(x=X, bin_width=0.125),
              x=tensor((3, 2)), bin_width=real(0.0, low_open=True), generator=generator())
TABLE += rows("inverse.invert", inverse.invert, dict(denoiser=D, path=PATH, x0=X, steps=3),
              denoiser=function(), path=name(), x0=tensor((3, 2)), solver=name(),
              steps=integer(1, paths.MAX_STEPS), grid=name())
TABLE += rows("inverse.mask_operator", inverse.mask_operator, dict(mask=MASK), mask=tensor((2,)))
TABLE += rows("inverse.replacement", inverse.replacement, dict(denoiser=D, path=PATH, x_start=X, A=A, y=Y, steps=3),
              denoiser=function(), path=name(), x_start=tensor((3, 2)), A=tensor((1, 2)), y=tensor((3, 1)),
              steps=integer(1, paths.MAX_STEPS), eta=real(0.0, 1.0), jumps=integer(1, 100), generator=generator())
TABLE += rows("inverse.dps", _at(inverse.dps), dict(denoiser=D, path=PATH, A=A, y=Y, sigma_y=0.1),
              denoiser=function(), path=name(), A=tensor((1, 2)), y=tensor((3, 1)), sigma_y=real(0.0, low_open=True),
              zeta=real(0.0))
TABLE += rows("fewstep.jump_grid", fewstep.jump_grid, dict(path=PATH, steps=4), path=name(),
              steps=integer(1, paths.MAX_STEPS), t_min=real(0.0, 1.0, low_open=True, high_open=True))
TABLE += rows("data.toy", data.toy, dict(name="moons", n=8), name=name(), n=integer(0, data.MAX_N),
              generator=generator(), dtype=FLOAT_DTYPE)
TABLE += rows("data.toy_mixture", data.toy_mixture, {}, name=name())
TABLE += rows("data.digits", data.digits, {}, split=name())
TABLE += rows("metrics.w2_empirical", metrics.w2_empirical, dict(x=X, y=X + 1.0), x=tensor((3, 2)), y=tensor((3, 2)))
TABLE += rows("metrics.frechet_distance", metrics.frechet_distance, dict(a=X, b=X + 1.0),
              a=tensor((3, 2)), b=tensor((3, 2)))
TABLE += rows("metrics.nearest_neighbour_distance", metrics.nearest_neighbour_distance,
              dict(samples=X, train=X + 1.0), samples=tensor((3, 2)), train=tensor((3, 2)),
              batch_size=integer(1) + HUGE)


def _params(table):
    return [pytest.param(r, id=r.id, marks=list(r.marks)) for r in table]


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """One intra-op thread (tiny tensors), and the case count printed when the module ends."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    _train(steps=1)  # the first optimiser step initialises lazily (seconds under load): not a hang
    yield
    torch.set_num_threads(threads)
    total = sum(COUNTS.values())
    line = (f"fuzz: {total} cases over {len(TABLE)} rows: {COUNTS['refused']} refused by name, "
            f"{COUNTS['returned']} returned finite output, {COUNTS['failed']} broke the contract")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():  # past pytest's capture of the teardown
        reporter.write_line("")
        reporter.write_line(line)


@pytest.mark.parametrize("case", _params(TABLE))
def test_bad_values(case: Row):
    """Every explicit bad value of the row: a finite result or a ValueError/TypeError naming the
    argument, within the time limit."""
    problems = [p for v in case.family.values if (p := check(case, v)) is not None]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", _params([r for r in TABLE if r.family.strategy is not None]))
@settings(max_examples=GENERATED, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure prints its value as drawn
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
@given(data=st.data())
def test_generated_bad_values(case: Row, data):
    """More bad values of the row's kind, drawn by hypothesis."""
    value = data.draw(case.family.strategy, label=case.argument)
    problem = check(case, value)
    assert problem is None, problem
