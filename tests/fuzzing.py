"""A table-driven fuzz harness for diffkit's public API (used by ``tests/test_fuzz.py``).

The contract every public function keeps: called with one bad argument (the others valid), it
either returns a finite result or raises ``ValueError``/``TypeError`` whose message names that
argument; it never crashes with another exception, never hangs, never returns ``nan``/``inf`` in
silence.

The table is a list of :class:`Row`: a function, the name of one argument, and a
:class:`Family` of bad values for that argument (explicit values plus a hypothesis strategy that
generates more). :func:`rows` makes one row per argument from one call::

    TABLE += rows("paths.grid", paths.grid, dict(grid="karras", steps=4, path="vp-linear"),
                  steps=integer(1, paths.MAX_STEPS), rho=real(*paths.RHO_RANGE), grid=name())

Adding a module is one such line per public function (see "Adding a module" in
``tests/test_fuzz.py``). Each case runs in a worker thread under :data:`TIME_LIMIT` seconds; a
case still running then is a hang and fails.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from hypothesis import strategies as st

__all__ = ["TIME_LIMIT", "Family", "Row", "rows", "row", "integer", "real", "name", "tensor",
           "boolean", "function", "generator", "anything", "check", "COUNTS"]

#: seconds a single case may run (a first call may import a module or build a cache)
TIME_LIMIT = 5.0

#: what the cases did, over the session: "refused" (a clean, named error), "returned" (finite
#: output), "failed" (anything else)
COUNTS: Counter = Counter()

NAN, INF = math.nan, math.inf


class _Opaque:
    """An object of no kind any function accepts."""

    def __repr__(self) -> str:
        return "<opaque>"


@dataclass(frozen=True)
class Family:
    """Bad values of one kind of argument: ``values`` are always tried; ``strategy`` (hypothesis)
    draws more, in :func:`test_fuzz.test_generated_bad_values`."""

    values: tuple
    strategy: Any = None

    def __add__(self, other: "Family") -> "Family":
        strategies = [s for s in (self.strategy, other.strategy) if s is not None]
        return Family(self.values + other.values,
                      st.one_of(*strategies) if strategies else None)


WRONG_TYPES = (None, "1", b"1", [1.0], {"a": 1}, _Opaque(), 1j)


def anything(*extra) -> Family:
    """Values of the wrong type for any argument that wants a number, a tensor or a name."""
    return Family(WRONG_TYPES + tuple(extra))


def integer(low: int | None = None, high: int | None = None) -> Family:
    """Bad values for an integer in ``[low, high]``: out of range (including ``10**9``, ``10**12``
    when there is an upper bound), non-whole floats, non-finite floats, bools, strings, None."""
    values = [2.5, -0.5, NAN, INF, -INF, True, "3", None, [3], 1j]
    if low is not None:
        values += [low - 1, low - 10**6]
    if high is not None:
        values += [high + 1, 10**9, 10**12, float(10**12)]
    gens = [st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
            .filter(lambda v: v != math.floor(v))]
    if low is not None:
        gens.append(st.integers(max_value=low - 1, min_value=low - 10**6))
    if high is not None:
        gens.append(st.integers(min_value=high + 1, max_value=high + 10**15))
    return Family(tuple(values), st.one_of(*gens))


def real(low: float | None = None, high: float | None = None, allow_inf: bool = False,
         low_open: bool = False, high_open: bool = False) -> Family:
    """Bad values for a real number in ``[low, high]`` (ends excluded when ``*_open``): ``nan``,
    the infinities (unless allowed), out of range, wrong types."""
    values = [NAN, "0.5", None, [0.5], 1j, _Opaque()]
    if not allow_inf:
        values += [INF, -INF]
    if low is not None:
        values += [low if low_open else low - 1e-3 * max(1.0, abs(low)), low - 1e6]
    if high is not None:
        values += [high if high_open else high + 1e-3 * max(1.0, abs(high)), high + 1e6]
        if allow_inf:
            values.append(INF)
    gens = [st.just(NAN)]
    if low is not None:
        gens.append(st.floats(max_value=low, exclude_max=not low_open, allow_nan=False,
                              allow_infinity=allow_inf, min_value=None if allow_inf else -1e300))
    if high is not None:
        gens.append(st.floats(min_value=high, exclude_min=not high_open, allow_nan=False,
                              allow_infinity=allow_inf, max_value=None if allow_inf else 1e300))
    return Family(tuple(values), st.one_of(*gens))


def name(*more_bad) -> Family:
    """Bad values for a name: unknown strings, wrong case, the name in a list (unhashable), None,
    numbers."""
    values = ("", "nope", "  ", "LINEAR-VP", ["vp-linear"], ("ddim",), None, 3, 2.5, _Opaque()) + more_bad
    return Family(values, st.text(max_size=12).filter(lambda s: s.strip() not in _KNOWN_NAMES))


# strings that are valid names somewhere in the kit: generated names avoid them
_KNOWN_NAMES = {"vp-linear", "vp-cosine", "ve", "edm", "linear", "uniform", "logsnr", "karras",
                "ddpm", "ddim", "euler-maruyama", "pc", "euler", "heun", "dpm++2m", "dpm++3m", "rk4",
                "adaptive", "random", "confidence", "margin", "entropy", "threshold", "factor",
                "prophet", "draft-verify", "reverse-diffusion", "dopri5", "bosh3", "fehlberg2",
                "adaptive_heun", "dopri8", "min", "mean", "cosine", "copy", "sort", "latin",
                "x0", "eps", "score", "v", "velocity", "elbo", "dsm", "cfm"}


def tensor(shape: tuple, dtype=torch.float64, floating: bool = True, low=None, high=None) -> Family:
    """Bad values for a tensor of ``shape``: ``nan``/``inf`` at one entry, an integer (or, when
    integers are wanted, a float) tensor, wrong number of dimensions, a complex tensor, wrong
    types. For integer tensors with values in ``[low, high]``, out-of-range entries too."""
    def filled(value, dt=dtype):
        x = torch.zeros(shape, dtype=dt)
        if x.numel():
            x.reshape(-1)[x.numel() // 2] = value
        return x

    values: list = [None, "x", 3.5, _Opaque(), torch.zeros(shape, dtype=torch.complex128),
                    torch.zeros((*shape, 2, 2), dtype=dtype)]
    if floating:
        values += [filled(NAN), filled(INF), filled(-INF), torch.zeros(shape, dtype=torch.long)]
        gen = st.tuples(st.integers(0, max(0, math.prod(shape) - 1)),
                        st.sampled_from([NAN, INF, -INF])).map(
            lambda kv: torch.zeros(shape, dtype=dtype).reshape(-1).index_fill(
                0, torch.tensor([kv[0]]), kv[1]).reshape(shape))
    else:
        values += [torch.zeros(shape, dtype=torch.float64) + 0.5]
        if low is not None:
            values.append(filled(low - 1, torch.long))
        if high is not None:
            values.append(filled(high + 1, torch.long))
        gen = st.integers(min_value=high + 1 if high is not None else -(2**40),
                          max_value=2**40 if high is not None else (low - 1 if low is not None else -1)
                          ).map(lambda v: filled(v, torch.long))
    return Family(tuple(values), gen)


def boolean() -> Family:
    """Bad values for a flag: numbers, strings, None."""
    return Family((0, 1, "yes", None, 2.5, NAN))


def function() -> Family:
    """Bad values for a callable."""
    return Family((None, 3, "D", [1], torch.zeros(2)))


def generator() -> Family:
    """Bad values for a ``torch.Generator`` (None is allowed)."""
    return Family((3, "seed", 2.5, [0], torch.zeros(1)))


@dataclass(frozen=True)
class Row:
    """One function and one of its arguments: ``call(value)`` calls the function with ``value`` in
    that argument's place. An error must name ``argument`` (or one of ``aliases``)."""

    id: str
    call: Callable[[Any], Any]
    argument: str
    family: Family
    aliases: tuple = ()
    marks: tuple = field(default=(), compare=False)
    #: the part of the result that must be finite (all of it by default); e.g. a decoder's
    #: tokens, when its history marks "not applicable" with nan by design
    output: Callable[[Any], Any] | None = None
    #: exceptions accepted besides ValueError/TypeError (a missing file: FileNotFoundError)
    errors: tuple = ()


def row(label: str, fn: Callable, base: dict, argument: str, family: Family, aliases=(),
        marks=(), output=None, errors=()) -> Row:
    """A row calling ``fn(**{**base, argument: value})``."""

    def call(value):
        return fn(**{**base, argument: value})

    return Row(f"{label}/{argument}", call, argument, family, tuple(aliases), tuple(marks),
               output, tuple(errors))


def rows(label: str, fn: Callable, base: dict, aliases: dict | None = None, output=None,
         **families) -> list[Row]:
    """One :func:`row` per keyword: ``argument=family``. ``aliases`` maps an argument to other
    names its errors may use instead (``name`` of ``paths.get`` is called ``path`` there);
    ``output`` picks the part of the result that must be finite."""
    aliases = aliases or {}
    return [row(label, fn, base, arg, fam, aliases=aliases.get(arg, ()), output=output)
            for arg, fam in families.items()]


def _non_finite(value, depth: int = 0) -> str | None:
    """Where a result holds ``nan``/``inf`` (None when it is finite everywhere)."""
    if depth > 4:
        return None
    if isinstance(value, torch.Tensor):
        if (value.is_floating_point() or value.is_complex()) and value.numel():
            if not bool(torch.isfinite(value.detach()).all()):
                return f"tensor of shape {tuple(value.shape)} with nan/inf"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"float {value}"
    if isinstance(value, (list, tuple)):
        for v in value[:1000]:
            bad = _non_finite(v, depth + 1)
            if bad:
                return bad
        return None
    if isinstance(value, dict):
        return _non_finite(list(value.values()), depth)
    if isinstance(value, torch.nn.Module):
        return _non_finite(list(value.state_dict().values()), depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _non_finite([getattr(value, f.name) for f in dataclasses.fields(value)], depth)
    if hasattr(value, "__dict__") and depth == 0:
        return _non_finite(list(vars(value).values()), depth + 1)
    return None


def _run(call: Callable, value) -> tuple[str, Any]:
    """``("ok", result)``, ``("error", exception)`` or ``("hang", None)``, in a worker thread."""
    box: list = []

    def work():
        try:
            box.append(("ok", call(value)))
        except BaseException as exc:  # noqa: BLE001  every outcome is judged below
            box.append(("error", exc))

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(TIME_LIMIT)
    if worker.is_alive():
        return "hang", None
    return box[0]


def check(r: Row, value) -> str | None:
    """Run one case; ``None`` when it keeps the contract, else what went wrong."""
    problem = _check(r, value)
    if problem is not None:
        COUNTS["failed"] += 1
    return problem


def _check(r: Row, value) -> str | None:
    kind, out = _run(r.call, value)
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    if kind == "hang":
        return f"{r.argument}={shown}: still running after {TIME_LIMIT:g} s"
    if kind == "ok":
        bad = _non_finite(out if r.output is None else r.output(out))
        if bad:
            return f"{r.argument}={shown}: returned {bad} without an error"
        COUNTS["returned"] += 1
        return None
    exc = out
    if isinstance(exc, (ValueError, TypeError) + r.errors):
        message = str(exc)
        if any(n in message for n in (r.argument,) + r.aliases):
            COUNTS["refused"] += 1
            return None
        return f"{r.argument}={shown}: {type(exc).__name__} does not name the argument: {message[:160]}"
    return f"{r.argument}={shown}: {type(exc).__name__}: {str(exc)[:160]}"
