"""Shared tab helpers: bounded inputs that never break a page, a cached endpoint, presets.

A tab declares its inputs once as *specs*, writes one pure function of the validated values, and
lets :class:`Endpoint` do the rest::

    from apps import widgets as w

    SPECS = [
        w.Choice("path", paths.NAMES, "vp-cosine", label="path"),
        w.Numeric("t", 0.0, 1.0, 0.3, step=0.01, label="t"),
        w.Numeric("seed", 0, 9999, 0, integer=True, label="seed"),
        w.Flag("compare", False, label="compare with the other paths"),
    ]

    def compute(path, t, seed, compare):            # pure and deterministic in its inputs
        ...
        return figure, values_dict, note_markdown    # matplotlib figures are fine

    ENDPOINT = w.Endpoint(compute, SPECS, api_name="paths", plot_format="webp")

    def build():
        first = ENDPOINT.default_view()             # computed once at start, then cached
        inputs = {                                   # one component per spec, keyed by name
            "path": SPECS[0].dropdown(elem_id="paths-path"),
            "t": SPECS[1].slider(elem_id="paths-t"),
            "seed": SPECS[2].number(elem_id="paths-seed"),
            "compare": SPECS[3].checkbox(),
        }
        plot = gr.Plot(first[0], label="schedule", format="webp")
        values = gr.JSON(first[1], label="values")
        note = gr.Markdown(first[2])
        ENDPOINT.wire(inputs, [plot, values, note])

What a tab gets from that:

* **Inputs that clamp or refuse, in one plain message.** In the page, a typed value outside a
  numeric input's bounds is clamped to the nearest bound and run; a value that is not a number,
  not finite, or not whole where an integer is wanted (seed 3.7) is refused. Either way the user
  sees one ``gr.Warning`` toast saying what happened, the input box shows the value that was
  actually run (the clamped value, or the last valid one after a refusal), and on a refusal every
  output keeps showing the last valid run (``gr.skip()``). The server log gets one line per
  rejected input (``diffkit.apps: /paths refused t = nan: ...``), never a traceback.
* **A named API endpoint** (``api_name``) whose parameters are the specs' names (``view_api()``
  lists them with the components' labels, and ``client.predict(t=0.5, api_name="/paths")``
  works by keyword). The API is strict: any value the page would clamp or refuse is refused with
  ``gr.Error`` carrying the same plain message (the client raises ``AppError``), so a script
  never gets a result for inputs it did not ask for.
* **A bounded LRU cache keyed by the validated inputs** (``cache_size`` entries): outputs are
  deterministic in the inputs, so a repeated request (fifty students opening the page at once)
  costs a dictionary look-up. Figures are encoded to images once, when cached, so a cached
  answer is never re-drawn. Never cache an endpoint whose answer depends on anything but its
  inputs.
* **The default view precomputed at start**: :meth:`Endpoint.default_view` (call it in
  ``build()``, which the hub runs once at start) computes the defaults' outputs into the cache;
  use them as the components' initial values, so the page shows a run on load without a request.
* **Presets**: :meth:`Endpoint.presets` adds a dropdown that sets several inputs at once and runs.
* **View controls**: :class:`View` is the same contract for a numeric input that only changes
  how the last run is shown (a table cut at a round), drawn from ``gr.State`` the run left.

Gradio's own bound and choice checks are switched off on the components made here (``Slider`` and
``Number`` would otherwise raise before the function runs, turning every output into an error
badge and printing a traceback); the specs are the one place where bounds live, and the UI
states them (``info=``, from :meth:`Numeric.describe`).

Triggers: a slider runs while it is dragged (``.input``) and when it is let go or its box is
left (``.release``); a value typed into its box runs on Enter or on leaving the box, never
keystroke by keystroke (typing ``-3`` would otherwise run ``-``, an empty box, refuse it and
write the last value back under the cursor). Number boxes run on ``.submit`` and ``.blur`` (Enter
leaves the box), dropdowns and checkboxes on ``.input``. Only user events trigger: writing a clamped
value back into a box does not run again. Before each page event a line of JavaScript sends what
each numeric box *shows*, or for a slider's box what was typed into it (gradio's slider clamps
its box to the bounds, silently, as the box is left, and would run ``0`` for a cleared box: the
server must see what the user typed). A small script installed when the page loads keeps a
numeric box's keystrokes from reaching gradio until the box is left (see
:func:`_numeric_boxes_js`), and makes Enter leave the box; an event fired from a slider's box
that still has the focus (a click into it) sends :data:`TYPING` and does nothing.
A numeric component without an ``elem_id`` gets ``<api_name>-<name>``.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import logging
import math
import numbers
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
from gradio import component_meta as gradio_component_meta

__all__ = ["Rejected", "Numeric", "Choice", "Flag", "Endpoint", "View", "freeze", "LOG",
           "PLOTTING", "TYPING"]

#: held while a tab computes and draws its outputs: matplotlib's mathtext parser (pyparsing) is
#: not thread-safe, and two figures with TeX labels drawn at once can raise a ParseException.
#: Events of the hub run in worker threads, two per endpoint and several endpoints at once.
PLOTTING = threading.RLock()

#: the narrowest a slider is laid out (px): its label, number box and both bound labels fit; a
#: row of sliders wraps rather than squeezing them (at 800 px, two or three to a row)
SLIDER_MIN_WIDTH = 240

#: what the page sends for a slider whose box the user is still typing in: the event does nothing
TYPING = "(typing)"

#: one line per rejected input goes here (stderr), never a traceback
LOG = logging.getLogger("diffkit.apps")
if not LOG.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    LOG.addHandler(_handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False


class Rejected(ValueError):
    """A value an input refuses; its message is one plain sentence naming the input."""


def _fmt(x: float) -> str:
    return f"{x:g}"


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if value.strip() else "an empty box"
    if value is None:
        return "an empty box"
    return repr(value) if not isinstance(value, numbers.Real) else _fmt(float(value))


# -- input specs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Numeric:
    """A bounded number (``integer=True``: a whole number) called ``name``.

    ``check(value, clamp=True)`` returns ``(value, note)``: the value to run (clamped into
    ``[lo, hi]`` when ``clamp``, the note then saying so) or raises :class:`Rejected` for a
    value that is not a number, not finite, not whole where an integer is wanted, or (with
    ``clamp=False``) out of bounds.
    """

    name: str
    lo: float
    hi: float
    default: float
    integer: bool = False
    step: float | None = None
    label: str | None = None
    info: str | None = None  # extra words after the bounds in the UI's help line

    def __post_init__(self):
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo <= self.hi):
            raise ValueError(f"{self.name}: bounds must be finite with lo <= hi")
        if self.integer and (self.lo != int(self.lo) or self.hi != int(self.hi)):
            raise ValueError(f"{self.name}: integer bounds must be whole numbers")
        self.check(self.default, clamp=False)

    def describe(self) -> str:
        """The bounds in words, for the UI: ``an integer in 1..100`` / ``a number in [0, 1]``."""
        if self.integer:
            return f"a whole number in {int(self.lo)}..{int(self.hi)}"
        return f"a number in [{_fmt(self.lo)}, {_fmt(self.hi)}]"

    def parse(self, value) -> float | int:
        """``value`` as a finite number (an ``int`` when ``integer``), bounds not checked."""
        if isinstance(value, bool):
            raise Rejected(f"{self.name} must be {self.describe()}; got {value!r}")
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise Rejected(f"{self.name} must be {self.describe()}; got {_shown(value)}") from None
        if not isinstance(value, numbers.Real):
            raise Rejected(f"{self.name} must be {self.describe()}; got {_shown(value)}")
        v = float(value)
        if not math.isfinite(v):
            raise Rejected(f"{self.name} must be {self.describe()}; got {_fmt(v)}")
        if self.integer:
            if v != math.floor(v):
                raise Rejected(f"{self.name} must be {self.describe()}; got {_fmt(v)}, "
                               "which is not whole")
            return int(v)
        return v

    def check(self, value, clamp: bool = True) -> tuple[float | int, str]:
        v = self.parse(value)
        if self.lo <= v <= self.hi:
            return v, ""
        if not clamp:
            raise Rejected(f"{self.name} must be {self.describe()}; got {_fmt(v)}")
        c = min(max(v, self.lo), self.hi)
        c = int(c) if self.integer else float(c)
        return c, f"{self.name} = {_fmt(v)} is outside {self._range()}: ran {_fmt(c)} instead."

    def _range(self) -> str:
        if self.integer:
            return f"{int(self.lo)}..{int(self.hi)}"
        return f"[{_fmt(self.lo)}, {_fmt(self.hi)}]"

    def _help(self) -> str:
        return f"{self.describe()}" + (f"; {self.info}" if self.info else "")

    def slider(self, **kwargs) -> gr.Slider:
        """A ``gr.Slider`` over the bounds whose typed values reach :meth:`check` unfiltered."""
        step = self.step if self.step is not None else (1 if self.integer else None)
        kw = dict(value=self.default, label=self.label or self.name, info=self._help(),
                  min_width=SLIDER_MIN_WIDTH)
        if step is not None:
            kw["step"] = step
        kw.update(kwargs)
        return _Slider(self.lo, self.hi, **kw)

    def number(self, **kwargs) -> gr.Number:
        """A ``gr.Number`` stating the bounds, whose typed values reach :meth:`check`."""
        kw = dict(value=self.default, label=self.label or self.name, info=self._help(),
                  minimum=self.lo, maximum=self.hi)
        if self.step is not None:
            kw["step"] = self.step
        kw.update(kwargs)
        return _Number(**kw)


@dataclass(frozen=True)
class Choice:
    """One of a fixed list of strings called ``name``; anything else is refused."""

    name: str
    choices: tuple
    default: str
    label: str | None = None
    info: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "choices", tuple(self.choices))
        self.check(self.default)

    def check(self, value, clamp: bool = True) -> tuple[str, str]:
        if not isinstance(value, str) or value not in self.choices:
            raise Rejected(f"{self.name} must be one of {', '.join(self.choices)}; "
                           f"got {_shown(value)}")
        return value, ""

    def dropdown(self, **kwargs) -> gr.Dropdown:
        kw = dict(choices=list(self.choices), value=self.default, label=self.label or self.name)
        if self.info:
            kw["info"] = self.info
        kw.update(kwargs)
        return _Dropdown(**kw)


@dataclass(frozen=True)
class Flag:
    """A yes/no input called ``name`` (``True``/``False``; nothing else)."""

    name: str
    default: bool = False
    label: str | None = None
    info: str | None = None

    def check(self, value, clamp: bool = True) -> tuple[bool, str]:
        if not isinstance(value, bool):
            raise Rejected(f"{self.name} must be true or false; got {_shown(value)}")
        return value, ""

    def checkbox(self, **kwargs) -> gr.Checkbox:
        kw = dict(value=self.default, label=self.label or self.name)
        if self.info:
            kw["info"] = self.info
        kw.update(kwargs)
        return _Checkbox(**kw)


Spec = Numeric | Choice | Flag


# Gradio's own checks, switched off: Slider's and Number's preprocess would raise on an
# out-of-range value before the function runs (error badges on every output and a traceback in
# the log), Number's ``precision`` would round 3.7 to 4 without a word, and Dropdown's choice
# check raises with a traceback too; every value goes to the spec's check instead.
#
# The override lives on a class, not on an instance: whenever a handler returns an update for
# a component (``gr.skip()``, ``gr.update(visible=...)``), gradio replaces that session's copy
# of it by ``type(component)(**constructor_args)``, a new instance, and an instance attribute
# would be lost there (the next typed value would meet gradio's bound check). ``is_template``
# makes gradio draw the parent class's component in the page.


# gradio writes a ``.pyi`` stub beside any module that defines a component class (editor hints
# for its own components); not wanted in a checkout, so the stub writer is off while these four
# classes are made.
_write_stub = gradio_component_meta.create_or_modify_pyi
gradio_component_meta.create_or_modify_pyi = lambda *args, **kwargs: None
try:
    class _Slider(gr.Slider):
        is_template = True

        def preprocess(self, payload):
            return payload

    class _Number(gr.Number):
        is_template = True

        def preprocess(self, payload):
            return payload

    class _Dropdown(gr.Dropdown):
        is_template = True

        def preprocess(self, payload):
            return payload

    class _Checkbox(gr.Checkbox):
        is_template = True

        def preprocess(self, payload):
            return payload
finally:
    gradio_component_meta.create_or_modify_pyi = _write_stub


# -- outputs -------------------------------------------------------------------------------------


def freeze(value, plot_format: str = "png"):
    """``value`` made safe to cache and to hand to several requests at once: a matplotlib figure
    is encoded once into gradio's plot payload (``format``) and closed; tuples and lists are
    frozen item by item; anything else is returned as is."""
    from matplotlib.figure import Figure

    if isinstance(value, Figure):
        from gradio.components.plot import PlotData
        from gradio.processing_utils import encode_plot_to_base64

        return PlotData(type="matplotlib", plot=encode_plot_to_base64(value, plot_format))
    if isinstance(value, (tuple, list)):
        return tuple(freeze(v, plot_format) for v in value)
    return value


def _fresh(outputs: tuple) -> list:
    """A copy of cached outputs that a caller may change (dicts and lists are copied)."""
    return [copy.deepcopy(v) if isinstance(v, (dict, list)) else v for v in outputs]


# -- the endpoint --------------------------------------------------------------------------------


@dataclass
class Endpoint:
    """A tab's deterministic computation ``compute(*validated) -> tuple of outputs`` behind
    validated inputs (``specs``, in the order of ``compute``'s positional parameters; their
    names are the API's parameter names), a bounded LRU cache
    keyed by the validated values, and the wiring of its page events and named API.

    ``run(**values)`` is the strict call (bounds refused, not clamped; :class:`Rejected` on bad
    input) through the cache; ``default_view()`` the outputs at every spec's default.
    """

    compute: Callable[..., Sequence]
    specs: Sequence[Spec]
    api_name: str
    plot_format: str = "png"
    cache_size: int = 128
    _cached: Callable = field(init=False, repr=False)

    def __post_init__(self):
        self.specs = tuple(self.specs)
        self.names = tuple(s.name for s in self.specs)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"spec names must be distinct; got {self.names}")
        self.defaults = {s.name: s.default for s in self.specs}
        self._cached = functools.lru_cache(maxsize=self.cache_size)(self._compute)

    def _compute(self, key: tuple) -> tuple:
        with PLOTTING:  # compute functions draw (layout parses TeX labels): one at a time
            return freeze(tuple(self.compute(*key)), self.plot_format)

    # validation ----------------------------------------------------------------------------
    def validate(self, raw: Mapping[str, Any], clamp: bool = False) -> tuple[dict, list[str]]:
        """``(values, notes)``: every spec's value checked (missing ones take their default);
        raises :class:`Rejected` on the first refused value."""
        unknown = set(raw) - set(self.names)
        if unknown:
            raise Rejected(f"unknown input(s) {', '.join(sorted(unknown))}; "
                           f"the inputs are {', '.join(self.names)}")
        values, notes = {}, []
        for spec in self.specs:
            v, note = spec.check(raw.get(spec.name, spec.default), clamp=clamp)
            values[spec.name] = v
            if note:
                notes.append(note)
        return values, notes

    def run(self, **raw) -> list:
        """The outputs for ``raw`` (strict: out-of-bounds values are refused), from the cache."""
        values, _ = self.validate(raw, clamp=False)
        return self.cached(values)

    def cached(self, values: Mapping[str, Any]) -> list:
        """The outputs for already validated ``values``, computed once per distinct key."""
        return _fresh(self._cached(tuple(values[n] for n in self.names)))

    def default_view(self) -> list:
        """The outputs at every spec's default (computed once, at start, into the cache)."""
        return self.cached(self.defaults)

    def cache_info(self):
        return self._cached.cache_info()

    # wiring --------------------------------------------------------------------------------
    def api_function(self) -> Callable:
        """The named API's function: parameters named after the specs (with their defaults),
        strict, raising ``gr.Error`` with the plain message on a refused value."""

        def api(*args):
            try:
                values, _ = self.validate(dict(zip(self.names, args)), clamp=False)
            except Rejected as err:
                _log(self.api_name, "refused", err)
                raise gr.Error(str(err), print_exception=False) from None
            out = self.cached(values)
            return out[0] if len(out) == 1 else out  # gradio takes one output as is

        return _named(api, self.api_name, self.defaults,
                      f"The {self.api_name} endpoint: inputs {', '.join(self.names)}.")

    def page_function(self, inputs: Mapping[str, Any]) -> Callable:
        """The page's handler: clamps, refuses with a toast, keeps outputs on a refusal, writes
        the value actually run back into each box that shows something else."""
        n_inputs = len(self.names)

        def page(*args):
            raw, last = dict(zip(self.names, args[:n_inputs])), args[n_inputs]
            if any(isinstance(v, str) and v == TYPING for v in raw.values()):
                return [gr.skip()] * (len(self._outputs) + n_inputs + 1)  # not typed yet
            last = dict(self.defaults, **(last or {}))
            try:
                values, notes = self.validate(raw, clamp=True)
            except Rejected as err:
                _log(self.api_name, "refused", err)
                gr.Warning(f"{err}. Kept the last run.")
                n_out = len(self._outputs)
                boxes = [last[n] if _differs(raw[n], last[n]) else gr.skip() for n in self.names]
                return [gr.skip()] * n_out + boxes + [last]
            for note in notes:
                _log(self.api_name, "clamped", note)
                gr.Warning(note)
            outputs = self.cached(values)
            # only a box showing something else is rewritten: rewriting a slider mid-drag would
            # pull it back under the user's hand
            boxes = [values[n] if _differs(raw[n], values[n]) else gr.skip() for n in self.names]
            return outputs + boxes + [values]

        return page

    def wire(self, inputs: Mapping[str, Any], outputs: Sequence, *,
             trigger_mode: str = "always_last"):
        """Wire the page's events of ``inputs`` (a component per spec name) to ``outputs``,
        and register the named API ``/<api_name>`` over the same components. Call inside the
        tab's ``gr.Blocks`` context. Returns the page event (chain ``.then`` on it to follow
        each run, as :meth:`View.follow` does)."""
        missing = [n for n in self.names if n not in inputs]
        if missing:
            raise ValueError(f"wire: no component for input(s) {', '.join(missing)}")
        comps = [inputs[n] for n in self.names]
        self._outputs = list(outputs)
        self._comps = comps
        self._state = gr.State(dict(self.defaults))
        event = gr.on(triggers=_triggers(comps), fn=self.page_function(inputs),
                      inputs=comps + [self._state], outputs=self._outputs + comps + [self._state],
                      api_visibility="private", trigger_mode=trigger_mode,
                      show_progress="minimal", js=_typed_values_js(self.specs, comps, self.api_name))
        _watch_boxes([c.elem_id for s, c in zip(self.specs, comps) if isinstance(s, Numeric)])
        # the named API: the same components, a strict function with named parameters
        _register_api(self.api_name, self.api_function(), comps, self._outputs)
        return event

    def presets(self, presets: Mapping[str, Mapping[str, Any]], *, label: str = "preset",
                info: str | None = None, **kwargs) -> gr.Dropdown:
        """A dropdown of named presets (each a mapping of some inputs to values; the others
        keep their defaults) that sets the inputs and runs. Call after :meth:`wire`, inside the
        tab's context. Every preset is validated now (strictly), so a bad one fails at start."""
        checked = {name: self.validate(p, clamp=False)[0] for name, p in presets.items()}
        dd = gr.Dropdown(list(checked), value=None, label=label, info=info, **kwargs)

        def apply(name):
            if name not in checked:
                gr.Warning(f"{label} must be one of {', '.join(checked)}")
                return [gr.skip()] * (len(self._outputs) + len(self._comps) + 1)
            values = checked[name]
            return self.cached(values) + [values[n] for n in self.names] + [values]

        dd.input(apply, inputs=dd, outputs=self._outputs + self._comps + [self._state],
                 api_visibility="private")
        return dd


@dataclass
class View:
    """A *view control*: a numeric input that changes how the last run is shown, not what is
    run (the dLLM tab's "show rounds up to"). ``show(value, *state)`` draws the output(s) from
    the validated value and the state the run left (``gr.State`` components).

    It keeps the page contract of :class:`Endpoint`'s inputs: a typed value outside the bounds
    is clamped and shown, with one warning and one log line; one that is not a number (or not
    whole) is refused the same way and the box shows the last value shown again, the outputs
    unchanged; the box always shows the value the view shows. Its named API ``/<api_name>``
    takes the spec's name by keyword and is strict. When a run of the tab writes the control
    (the dLLM tab sets it to the run's last round), chain :meth:`follow` on that run's event so
    the view knows what it shows.
    """

    show: Callable[..., Any]
    spec: Numeric
    api_name: str

    def page_function(self, n_outputs: int) -> Callable:
        def page(value, last, *state):
            if isinstance(value, str) and value == TYPING:
                return [gr.skip()] * (n_outputs + 2)
            try:
                v, note = self.spec.check(value, clamp=True)
            except Rejected as err:
                _log(self.api_name, "refused", err)
                gr.Warning(f"{err}. Kept the view.")
                box = last if last is not None and _differs(value, last) else gr.skip()
                return [gr.skip()] * n_outputs + [box, gr.skip()]
            if note:
                _log(self.api_name, "clamped", note)
                gr.Warning(note)
            out = self.show(v, *state)
            out = list(out) if isinstance(out, (tuple, list)) else [out]
            return out + [v if _differs(value, v) else gr.skip(), v]

        return page

    def api_function(self) -> Callable:
        def api(value, *state):
            try:
                v, _ = self.spec.check(value, clamp=False)
            except Rejected as err:
                _log(self.api_name, "refused", err)
                raise gr.Error(str(err), print_exception=False) from None
            return self.show(v, *state)

        # the state comes from the session, not from the call
        return _named(api, self.api_name, {self.spec.name: self.spec.default},
                      f"The {self.api_name} view: input {self.spec.name}.", state=True)

    def wire(self, comp, state: Sequence, outputs: Sequence) -> None:
        """Wire ``comp`` (a slider or number box made from :attr:`spec`) to ``outputs`` through
        :attr:`show`, reading ``state`` too. Call inside the tab's ``gr.Blocks`` context."""
        if not comp.elem_id:
            comp.elem_id = self.api_name
        self.comp, outputs = comp, list(outputs)
        self.last = gr.State(comp.value)
        gr.on(triggers=_triggers([comp]), fn=self.page_function(len(outputs)),
              inputs=[comp, self.last, *state], outputs=outputs + [comp, self.last],
              api_visibility="private", trigger_mode="always_last", show_progress="hidden",
              js=_typed_values_js([self.spec, None] + [None] * len(state),
                                  [comp, self.last, *state], self.api_name))
        _watch_boxes([comp.elem_id])
        _register_api(self.api_name, self.api_function(), [comp, *state], outputs)

    def follow(self, event) -> None:
        """After each ``event`` that may write the control (a run of the tab), record the value
        it shows as the view's last one."""
        event.then(lambda v: v, inputs=self.comp, outputs=self.last, api_visibility="private",
                   show_progress="hidden")


def _log(api_name: str, where: str, message) -> None:
    """The one server-log line of a clamped or refused value (never a traceback)."""
    LOG.info("/%s %s: %s", api_name, where, message)


def _named(api: Callable, api_name: str, defaults: Mapping[str, Any], doc: str,
           state: bool = False) -> Callable:
    """``api`` with the parameters ``defaults`` (name: default) as its signature, so the named
    API lists them and takes them by keyword; ``state``: it also takes the session's state
    after them (``gr.State`` inputs, which the API does not list)."""
    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d)
              for n, d in defaults.items()]
    if state:
        params.append(inspect.Parameter("state", inspect.Parameter.VAR_POSITIONAL))
    api.__signature__ = inspect.Signature(params)
    api.__name__ = api.__qualname__ = api_name.replace("-", "_")
    api.__doc__ = doc
    return api


def _register_api(api_name: str, fn: Callable, inputs: Sequence, outputs: Sequence) -> None:
    """The named API ``/<api_name>``: ``fn`` over ``inputs`` and ``outputs``, on a trigger no
    user sees (an invisible button)."""
    hidden = gr.Button(visible=False, elem_id=f"{api_name}-api-trigger")
    hidden.click(fn, inputs=list(inputs), outputs=list(outputs), api_name=api_name)


def _triggers(comps) -> list:
    """The page events of numeric, choice and flag inputs (see the module's docstring)."""
    triggers = []
    for comp in comps:
        if isinstance(comp, gr.Number):
            triggers += [comp.submit, comp.blur]
        elif isinstance(comp, gr.Slider):
            triggers += [comp.input, comp.release]
        else:
            triggers.append(comp.input)
    return triggers


def _watch_boxes(ids: Sequence[str]) -> None:
    """Install :func:`_numeric_boxes_js` for the boxes ``ids`` when the page loads."""
    root = gr.context.Context.root_block
    if ids and root is not None:
        root.load(None, js=_numeric_boxes_js(ids), api_visibility="private")


def _typed_values_js(specs, comps, api_name: str) -> str:
    """The browser-side step run before each page event: for every numeric input (``specs[i]``
    a :class:`Numeric`; anything else is passed through) it sends the text its box shows, or for
    a slider's box the text typed into it since the last event (recorded by
    :func:`_numeric_boxes_js`: gradio clamps the box to the slider's bounds as it is left, before
    this runs); :data:`TYPING` for a slider whose box has the focus (a keystroke: the value runs
    on Enter or on leaving the box). An empty box is sent as ``null``, a text that is no number
    as ``NaN`` (``null`` too, in JSON). A numeric component without an ``elem_id`` gets
    ``<api_name>-<name>``."""
    ids, sliders = [], []
    for spec, comp in zip(specs, comps):
        if isinstance(spec, Numeric):
            if not comp.elem_id:
                comp.elem_id = f"{api_name}-{spec.name}"
            ids.append(comp.elem_id)
        else:
            ids.append(None)
        sliders.append(isinstance(spec, Numeric) and isinstance(comp, gr.Slider))
    return ("(...args) => { const ids = " + json.dumps(ids) + ";"
            " const sliders = " + json.dumps(sliders) + ";"
            " const boxes = ids.map(id => id && document.querySelector("
            "'#' + CSS.escape(id) + ' input[type=number]'));"
            " const typing = boxes.findIndex((b, i) => sliders[i] && b"
            " && b === document.activeElement);"
            " return args.map((v, i) => { const box = boxes[i]; if (!box) return v;"
            " if (typing >= 0) return i === typing ? " + json.dumps(TYPING) + " : v;"
            " const t = box.dataset.typed; delete box.dataset.typed;"
            " const s = (t === undefined ? box.value : t).trim();"
            " return s === '' ? null : Number(s); }); }")


def _numeric_boxes_js(ids: Sequence[str]) -> str:
    """JavaScript run once when the page loads, for the numeric inputs ``ids`` (sliders and
    number boxes). While the user types in one's box, the keystrokes stay in the box: the
    ``input`` events are stopped before they reach gradio (a slider would run each half-typed
    value, and gradio rewrites a box holding a text that is not yet a number, such as ``-`` or
    ``1e``, so that typing ``-1e9`` quickly leaves ``9``), and the text is recorded in the box's
    ``data-typed``. Enter leaves the box (gradio's slider has no submit event). As the box is
    left, one ``input`` event hands the final text to the component's value (gradio's own event
    listener does not see it), then gradio's ``release`` (slider) or ``blur`` (number box) runs
    the page event, which reads ``data-typed`` (a slider has clamped its box to the bounds by
    then). Installed once per page; each endpoint adds its inputs."""
    return ("() => { const w = window; w.diffkitNumeric = w.diffkitNumeric || new Set();"
            " " + json.dumps(list(ids)) + ".forEach(id => w.diffkitNumeric.add(id));"
            " if (w.diffkitNumericWatched) return []; w.diffkitNumericWatched = true;"
            " let syncing = false;"
            " const ours = t => t instanceof HTMLInputElement && t.type === 'number'"
            " && [...w.diffkitNumeric].some(id => t.closest('#' + CSS.escape(id)));"
            " document.addEventListener('input', e => { const box = e.target;"
            " if (syncing || !ours(box)) return;"
            " box.dataset.typed = box.value; e.stopPropagation(); }, true);"
            " document.addEventListener('keydown', e => {"
            " if (e.key === 'Enter' && ours(e.target)) e.target.blur(); }, true);"
            " document.addEventListener('blur', e => { const box = e.target;"
            " if (!ours(box) || box.dataset.typed === undefined) return;"
            " const stop = ev => ev.stopPropagation(); box.addEventListener('input', stop);"
            " syncing = true; try { box.dispatchEvent(new Event('input', {bubbles: true})); }"
            " finally { syncing = false; box.removeEventListener('input', stop); } }, true);"
            " return []; }")


def _differs(raw, value) -> bool:
    """Whether the box showing ``raw`` must be rewritten to show ``value`` (3 and 3.0 agree)."""
    if isinstance(value, (bool, str)) or isinstance(raw, (bool, str)) or raw is None:
        return raw != value
    try:
        return float(raw) != float(value)
    except (TypeError, ValueError):
        return True
