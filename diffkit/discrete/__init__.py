"""Discrete (masked, absorbing-state) diffusion and diffusion-LLM decoding, measured exactly
against oracle languages.

- :mod:`.hmm`: :class:`HMMLanguage` / :class:`MarkovChain`, exact oracle languages.
- :mod:`.tasks`: ParallelBench-style list tasks with exact answer sets and oracle models.
- :mod:`.masking`: forward masking, the MDLM ELBO (training loss, exact value), ancestral sampling.
- :mod:`.strategies`: one record per decoding rule (LLaDA, Dream, Fast-dLLM, Prophet,
  draft-verify, EB-sampler, dInfer's credit and hierarchy, ReMDM, WINO).
- :mod:`.planner`: block bounds and round sizes (LLaDA's even split, Dream's timesteps).
- :mod:`.decode`: :func:`decode`, the one decoding loop.
- :mod:`.laws`, :mod:`.walk`, :mod:`.evaluate` (gathered in :mod:`.exact`): laws and information
  quantities, the exact law of a decoder's output, Monte-Carlo estimates and Pareto fronts.
- :mod:`.cache`: :class:`KVCacheModel`, prefix / dual (Fast-dLLM) and delayed (dKV-Cache) caches.
- :mod:`.checkpoints`: :func:`load_pretrained`, the shipped tiny masked transformers.
- :mod:`.hf`: :class:`HFModel`, a Hugging Face model (LLaDA, Dream) as a decode model.
- :mod:`.padding`: left-padded prompts of different lengths in one batch (``pad_id`` of
  :func:`decode`, :class:`OracleModel`, :class:`KVCacheModel`, :class:`HFModel`): each row decodes
  to the tokens it gets alone.

Vocabulary convention: tokens ``0 .. V-1`` are real, the mask is ``mask_id`` (``V`` by default);
models return logits over ``max(V, mask_id + 1)`` ids and never predict the mask.
"""

from . import strategies as strategy_records
from .cache import MODES as CACHE_MODES
from .cache import KVCacheModel
from .checkpoints import PRETRAINED, load_pretrained
from .decode import STRATEGIES, DecodeOutput, Round, decode, num_transfer_tokens, strategies
from .exact import (
    ExactLaw,
    MemoModel,
    MonteCarlo,
    bits_to_rounds,
    entropy,
    kl_divergence,
    monte_carlo,
    output_law,
    pareto_front,
    pareto_points,
    product_law,
    strategy_grid,
    total_correlation,
    total_variation,
    true_law,
)
from .hf import HFModel
from .hmm import HMMLanguage, MarkovChain, OracleModel, all_sequences, logits_from_probs
from .masking import (
    SCHEDULES,
    MaskSchedule,
    SampleOutput,
    ancestral_sample,
    exact_nelbo,
    get_schedule,
    mask_tokens,
    mdlm_loss,
    nelbo_weight,
)
from .planner import Plan
from .tasks import TASKS, Task, get_task, latin_squares

__all__ = [
    # oracle languages and tasks
    "HMMLanguage", "MarkovChain", "OracleModel", "all_sequences", "logits_from_probs",
    "TASKS", "Task", "get_task", "latin_squares",
    # masked diffusion
    "SCHEDULES", "MaskSchedule", "get_schedule", "mask_tokens", "nelbo_weight", "mdlm_loss",
    "exact_nelbo", "ancestral_sample", "SampleOutput",
    # decoding
    "STRATEGIES", "DecodeOutput", "Round", "decode", "num_transfer_tokens", "strategies",
    "strategy_records", "Plan",
    # exact evaluation
    "ExactLaw", "MemoModel", "output_law", "true_law", "total_variation", "kl_divergence", "entropy",
    "total_correlation", "bits_to_rounds", "product_law", "monte_carlo", "MonteCarlo",
    "strategy_grid", "pareto_points", "pareto_front",
    # networks, caches, adapters
    "KVCacheModel", "CACHE_MODES", "load_pretrained", "PRETRAINED", "HFModel",
]
