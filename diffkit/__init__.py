"""diffkit: a small engine for the three views of diffusion (variational, score, flow), proved
exactly on Gaussian data, and discrete (masked) diffusion with dLLM decoding proved on an exact
oracle language.

The front door for sampling is :func:`diffkit.sample`; the exact oracles live in
:mod:`diffkit.analytic`, the paths in :mod:`diffkit.paths`.
"""

from . import analytic, losses, paths, samplers, views
from .samplers import sample

__version__ = "0.1.0"

__all__ = ["analytic", "losses", "paths", "samplers", "views", "sample", "__version__"]
