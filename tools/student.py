"""Write the student version of the lessons: each solution replaced by a stub that still runs.

A lesson's exercise is two code cells: the cell tagged ``solution`` (the filled-in answer) and,
after it, the cell tagged ``exercise-check`` (asserts that the answer is right). The student
version keeps every cell but the solutions: each ``solution`` cell becomes a stub that binds the
same top-level names to ``None`` (a function the student must write, a number they must derive),
so the notebook still runs up to the check, and the check fails until the student has done the
work. Outputs of solution and check cells are cleared (the stored run would give the answer
away); every other output is kept, so the lesson reads as before.

Usage (``make student``)::

    python tools/student.py [--out build/student] [lessons/*.ipynb ...]

With no notebook given, every ``lessons/NN_*.ipynb`` is written to ``--out``. With ``--verify``,
each student version written is also executed (``DIFFKIT_FAST=1``, in a Jupyter kernel) up to
its last check, and a JSON report per lesson is printed: a check that passes, or any other cell
that raises, is a fault of the lesson (exit status 1). After editing a lesson::

    python tools/student.py --verify --out /tmp/student lessons/07_guidance.ipynb
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTION, CHECK = "solution", "exercise-check"
RULE = "# " + "-" * 77


def defined_names(source: str) -> list[str]:
    """The names a cell binds at top level (assignments, ``def``, ``class``), in order."""
    names: list[str] = []

    def add(target):
        if isinstance(target, ast.Name):
            names.append(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                add(t)

    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                add(t)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            add(node.target)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
    return list(dict.fromkeys(names))


def stub(source: str) -> str:
    """A stub for a solution cell: its top-level names bound to ``None``, with a note saying
    what to write. Runs, and does nothing else."""
    names = defined_names(source)
    lines = ["# --- your answer " + "-" * 60,
             "# Replace each None below by your answer"
             + (f" ({', '.join(names)})." if names else ".")]
    lines += [f"{n} = None" for n in names] or ["pass"]
    lines.append(RULE)
    return "\n".join(lines)


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def student_notebook(nb):
    """A copy of ``nb`` with each ``solution`` cell stubbed and the outputs of solution and
    ``exercise-check`` cells cleared. Raises ``ValueError`` if a check has no solution before
    it."""
    out = copy.deepcopy(nb)
    seen_solution = False
    for cell in out.cells:
        t = tags(cell)
        if cell.cell_type != "code":
            continue
        if SOLUTION in t:
            cell.source = stub(cell.source)
            seen_solution = True
        if SOLUTION in t or CHECK in t:
            cell.outputs, cell.execution_count = [], None
        if CHECK in t and not seen_solution:
            raise ValueError("an exercise-check cell comes before any solution cell")
    return out


def write_student(notebooks, out_dir: Path) -> list[Path]:
    """Write the student version of each notebook of ``notebooks`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        path = Path(path)
        nb = nbformat.read(path, as_version=4)
        target = out_dir / path.name
        nbformat.write(student_notebook(nb), target)
        written.append(target)
    return written


def verify(target: Path, timeout: int = 300) -> dict:
    """Execute the student notebook ``target`` (written by :func:`write_student`) in a kernel,
    from the lessons' folder, up to its last ``exercise-check`` cell. Returns
    ``{"lesson", "checks", "checks_passed", "cells_failed"}``: the indices of the check cells,
    those that did *not* raise (each should: the solution is a stub), and the other cells that
    raised (none should: the stubs still run), with the error's last lines. ``timeout``: the
    seconds a cell may run.

    The kernel talks over unix sockets (:mod:`kernels`): several lessons verified at once
    (``tests/test_student.py`` runs two) cannot pick the same port."""
    from kernels import SocketKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(target, as_version=4)
    checks = [i for i, c in enumerate(nb.cells) if CHECK in tags(c)]
    report = {"lesson": Path(target).name, "checks": checks, "checks_passed": [],
              "cells_failed": []}
    if not checks:
        return report
    nb.cells = nb.cells[:max(checks) + 1]  # nothing after the last check is needed
    client = NotebookClient(nb, km=SocketKernelManager(kernel_name="python3"), timeout=timeout,
                            kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "lessons")}})
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, i)
            except CellExecutionError as err:
                if i not in checks:
                    report["cells_failed"].append({"cell": i, "error": str(err)[-1500:]})
            else:
                if i in checks:
                    report["checks_passed"].append(i)
    return report


#: the kernel of :func:`verify` runs the lessons as CI does: fast, headless, one thread
VERIFY_ENV = {"DIFFKIT_FAST": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks (default: lessons/NN_*.ipynb)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "student",
                        help="output folder (default build/student)")
    parser.add_argument("--verify", action="store_true",
                        help="also execute each student version up to its last check and print "
                             "a JSON report per lesson (exit 1 if a check passes or a cell fails)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
    if args.verify:  # the kernels inherit this process's environment
        os.environ.update(VERIFY_ENV)
        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    faults = 0
    for path in write_student(notebooks, args.out):
        if not args.verify:
            nb = nbformat.read(path, as_version=4)
            n = sum(SOLUTION in tags(c) for c in nb.cells)
            print(f"{path}: {n} solution cell(s) stubbed")
            continue
        report = verify(path)
        faults += bool(report["checks_passed"] or report["cells_failed"])
        print(json.dumps(report), flush=True)
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
