"""The student version of the lessons (``make student``, ``tools/student.py``).

Both ways: the full lessons pass nbval with their solutions (CI's nbval run), and here, in the
student version, every ``exercise-check`` cell *fails*: each lesson with an exercise is written
with its solution cells stubbed, executed in a kernel (``DIFFKIT_FAST=1``) up to its last check
(``tools/student.py --verify``), and every check must raise while every other cell before it
runs cleanly. So no exercise passes
without work, and the stubs still run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import student  # noqa: E402

LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))


def _tagged(nb, tag):
    return [i for i, c in enumerate(nb.cells) if tag in c.get("metadata", {}).get("tags", [])]


WITH_EXERCISES = [p for p in LESSONS if _tagged(nbformat.read(p, as_version=4), student.CHECK)]


def test_stub_binds_the_solution_names_to_none():
    source = ("import math\nt_prime, c = 1.0, 2.0\n"
              "def w_v(t, path):\n    return t\nclass Guess:\n    pass\nx: int = 3\n")
    assert student.defined_names(source) == ["t_prime", "c", "w_v", "Guess", "x"]
    ns: dict = {}
    exec(student.stub(source), ns)
    assert all(ns[n] is None for n in ("t_prime", "c", "w_v", "Guess", "x"))
    assert "math" not in ns  # the stub does nothing else
    exec(student.stub("print('side effect only')"), {})  # nothing bound: still runs


def test_student_notebook_keeps_everything_but_the_solutions():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("## Exercise"),
        nbformat.v4.new_code_cell("a = 41 + 1", metadata={"tags": ["solution"]},
                                  outputs=[nbformat.v4.new_output("stream", text="x")]),
        nbformat.v4.new_code_cell("assert a == 42\nprint('right')",
                                  metadata={"tags": ["exercise-check", "nbval-check-output"]},
                                  outputs=[nbformat.v4.new_output("stream", text="right")]),
    ])
    out = student.student_notebook(nb)
    assert "41" not in out.cells[1].source and "a = None" in out.cells[1].source
    assert out.cells[1].outputs == [] and out.cells[2].outputs == []
    assert out.cells[2].source == nb.cells[2].source and out.cells[0] == nb.cells[0]
    assert nb.cells[1].source == "a = 41 + 1"  # the lesson itself is untouched
    with pytest.raises(ValueError, match="before any solution"):
        student.student_notebook(nbformat.v4.new_notebook(cells=[nb.cells[2]]))


def test_every_check_has_a_solution_before_it():
    assert WITH_EXERCISES, "no lesson tags an exercise-check cell"
    for path in WITH_EXERCISES:
        nb = nbformat.read(path, as_version=4)
        solutions, checks = _tagged(nb, student.SOLUTION), _tagged(nb, student.CHECK)
        assert solutions and min(solutions) < min(checks), path.name


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict:
    """``tools/student.py --verify`` on every lesson with an exercise, two lessons at a time
    (each kernel runs one thread: the two cores run two lessons), the longest first."""
    out = tmp_path_factory.mktemp("student")

    def run(path):
        # the report and the kernel's messages go to files: a kernel outliving its client
        # cannot hold a pipe open; no standard input (a test worker's may be its channel)
        log = out / f"{path.stem}.log"
        with open(log, "w") as err, open(out / f"{path.stem}.json", "w+") as rep:
            try:
                subprocess.run([sys.executable, str(ROOT / "tools" / "student.py"), "--verify",
                                "--out", str(out / path.stem), str(path)], cwd=ROOT,
                               stdin=subprocess.DEVNULL, stdout=rep, stderr=err, timeout=480)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{path.name}: the student version ran past 480 s; its log: "
                            f"{log.read_text()[-2000:]}")
            rep.seek(0)
            lines = rep.read().strip().splitlines()
        assert lines, f"{path.name}: no report; its log: {log.read_text()[-2000:]}"
        return json.loads(lines[-1])

    longest_first = sorted(WITH_EXERCISES, key=lambda p: -p.stat().st_size)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return {r["lesson"]: r for r in pool.map(run, longest_first)}


@pytest.mark.timeout(900)  # every lesson run in a kernel: about two minutes on 2 cores
@pytest.mark.parametrize("path", WITH_EXERCISES, ids=[p.stem for p in WITH_EXERCISES])
def test_each_exercise_fails_in_the_student_version(path, reports):
    report = reports[path.name]
    # the tool ran every check the lesson tags (the student version keeps every cell in place)
    assert report["checks"] == _tagged(nbformat.read(path, as_version=4), student.CHECK)
    assert report["checks"], f"{path.name}: no exercise-check cell"
    assert report["checks_passed"] == [], f"{path.name}: checks that pass unsolved"
    assert report["cells_failed"] == [], f"{path.name}: cells that fail with the stubs"
