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
| :mod:`diffkit.viz.control` | guidance (sampled against tilted laws), inverse problems, few-step |

The path plots are also importable from ``diffkit.viz`` itself (``viz.plot_schedule``).

:func:`lesson_style` is the one place where the lessons' figure resolution and font size are set
(``LESSON_RC``): every lesson calls it once after ``%matplotlib inline``.
"""

from . import control, decoding, learning, paths, samplers
from .paths import *  # noqa: F401,F403
from .paths import __all__ as _paths_all

#: matplotlib settings of every stored lesson figure: at least 110 dpi, fonts legible at that size
LESSON_RC = {"figure.dpi": 110, "savefig.dpi": 110, "font.size": 9, "legend.fontsize": 8,
             "axes.titlesize": 10, "axes.labelsize": 9}


def lesson_style() -> dict:
    """Apply ``LESSON_RC`` to matplotlib's global settings (call it in a notebook, after
    ``%matplotlib inline``, which sets its own resolution); returns the settings applied."""
    import matplotlib

    matplotlib.rcParams.update(LESSON_RC)
    return dict(LESSON_RC)


__all__ = ["paths", "samplers", "decoding", "learning", "control", "lesson_style", "LESSON_RC", *_paths_all]
