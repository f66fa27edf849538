"""Exact evaluation of dLLM decoding against an oracle, in one namespace.

The pieces live in three modules; this one gathers them for lessons and apps:

- :mod:`.laws`: the laws and information quantities (TV, KL, entropy, total correlation, the
  bits-to-rounds bound, the product law);
- :mod:`.walk`: the exact law of a decoder's output by walking its decoding tree
  (:func:`output_law`, :class:`ExactLaw`, :class:`MemoModel`);
- :mod:`.evaluate`: Monte-Carlo estimates, the strategy grid, exact Pareto points and front.
"""

from .evaluate import MonteCarlo, monte_carlo, pareto_front, pareto_points, strategy_grid
from .laws import (
    LN2,
    bits_to_rounds,
    entropy,
    kl_divergence,
    product_law,
    total_correlation,
    total_variation,
    true_law,
)
from .walk import ExactLaw, MemoModel, output_law

__all__ = ["ExactLaw", "MemoModel", "output_law", "true_law", "total_variation", "kl_divergence",
           "entropy", "total_correlation", "bits_to_rounds", "monte_carlo", "MonteCarlo",
           "product_law", "strategy_grid", "pareto_points", "pareto_front", "LN2"]
