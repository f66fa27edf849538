"""Pictures only: every plot that the lessons and the demo hub share.

The numbers a plot shows come from the engine module that owns them (``diffkit.analytic``,
``diffkit.samplers``, ``diffkit.discrete``, ...); a module here only draws them. Each function
draws with matplotlib's object interface (``matplotlib.figure.Figure``), never with ``pyplot``'s
global state, so the demo hub may render several figures at once from its worker threads.

| module | what it draws |
| --- | --- |
| :mod:`diffkit.viz.paths` | schedules, exact marginal densities of 2D data |
| :mod:`diffkit.viz.samplers` | sampler errors against NFE, trajectories, grids |
| :mod:`diffkit.viz.decoding` | dLLM decoding: unmasking frames, rounds, the Pareto plot |
| :mod:`diffkit.viz.learning` | learned models against exact ones: fields, errors over t, digit grids |

The path plots are also importable from ``diffkit.viz`` itself (``viz.plot_schedule``).
"""

from . import decoding, learning, paths, samplers
from .paths import *  # noqa: F401,F403
from .paths import __all__ as _paths_all

__all__ = ["paths", "samplers", "decoding", "learning", *_paths_all]
