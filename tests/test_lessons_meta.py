"""Every lesson notebook is stored as the project's conventions ask (docs/design.md): executed
top to bottom in one full run (not DIFFKIT_FAST), with outputs, no errors, pictures, exact checks tagged for nbval, and an
exercise whose answer is checked by an assert.

This reads the ``.ipynb`` files only (no kernel): it takes well under a second. Running the
notebooks is nbval's job (``DIFFKIT_FAST=1 pytest --nbval-lax lessons/``).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

LESSONS = Path(__file__).resolve().parents[1] / "lessons"
NOTEBOOKS = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
CHECK_TAG = "nbval-check-output"
MAX_BYTES = 1_500_000
FAST_LINE = 'os.environ.get("DIFFKIT_FAST") == "1"'
# text that changes from run to run and so must never be compared by nbval
UNSTABLE = re.compile(r"at 0x[0-9a-f]+|<Figure size|\d+\.\d+ ?s\b|seconds|elapsed", re.I)


def _text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") in ("execute_result", "display_data"):
        return output.get("data", {}).get("text/plain", "")
    return ""


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_the_first_lessons_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {"01_gaussian_paths.ipynb", "05_one_field_three_views.ipynb"} <= names, names


@pytest.fixture(params=NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def lesson(request):
    path = request.param
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return path, nb


def test_small_enough_to_keep_in_git(lesson):
    path, _ = lesson
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size} bytes"


def test_executed_top_to_bottom_in_one_run(lesson):
    """Execution counts 1, 2, 3, ... in cell order: the stored outputs come from one fresh run."""
    path, nb = lesson
    counts = [c.execution_count for c in _code_cells(nb) if c.source.strip()]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: execution counts {counts}"


def test_no_errors_stored(lesson):
    path, nb = lesson
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{path.name} cell {i}: {out.get('ename')}"
            if out.output_type == "stream" and out.name == "stderr":
                assert "Traceback" not in out.text, f"{path.name} cell {i}: traceback on stderr"


def test_stored_outputs_come_from_a_full_run(lesson):
    """The lesson reads DIFFKIT_FAST and prints it; the stored run had it off."""
    path, nb = lesson
    src = "\n".join(c.source for c in _code_cells(nb))
    assert FAST_LINE in src, f"{path.name} must read DIFFKIT_FAST with {FAST_LINE}"
    printed = "\n".join(_text(o) for c in _code_cells(nb) for o in c.get("outputs", []))
    assert "DIFFKIT_FAST = False" in printed, f"{path.name}: stored outputs are not from a full run"
    assert "DIFFKIT_FAST = True" not in printed


def test_has_pictures(lesson):
    path, nb = lesson
    images = [o for c in _code_cells(nb) for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images, f"{path.name}: no stored matplotlib figure"


def test_exact_checks_are_tagged_for_nbval(lesson):
    """At least one ``nbval-check-output`` cell; each prints stable text only (no object
    addresses, no timings), since nbval compares it with and without DIFFKIT_FAST."""
    path, nb = lesson
    tagged = [c for c in _code_cells(nb) if CHECK_TAG in c.metadata.get("tags", [])]
    assert tagged, f"{path.name}: no cell tagged {CHECK_TAG}"
    for cell in tagged:
        text = "".join(_text(o) for o in cell.get("outputs", []))
        assert text.strip(), f"{path.name}: a {CHECK_TAG} cell has no text output:\n{cell.source[:200]}"
        assert not UNSTABLE.search(text), f"{path.name}: unstable text in a checked cell: {text[:200]}"
        kinds = {o.output_type for o in cell.get("outputs", [])}
        assert kinds <= {"stream", "execute_result"}, f"{path.name}: checked cell outputs {kinds}"


def test_ends_with_an_exercise_checked_by_an_assert(lesson):
    """A markdown cell headed 'Exercise', followed by a code cell that asserts the answer and
    ran cleanly."""
    path, nb = lesson
    heads = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "markdown" and re.search(r"^#+ .*Exercise", c.source, re.M)]
    assert heads, f"{path.name}: no markdown heading with 'Exercise'"
    after = [c for c in nb.cells[heads[-1] + 1:] if c.cell_type == "code"]
    checked = [c for c in after if re.search(r"^\s*assert\b", c.source, re.M)]
    assert checked, f"{path.name}: no assert after the exercise heading"
    assert all(c.execution_count for c in checked)
    assert all(o.output_type != "error" for c in checked for o in c.get("outputs", []))
