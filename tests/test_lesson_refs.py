"""Lessons never send a student to a lesson that does not exist: every lesson number cited in a
lesson's markdown ("lesson 04", "Lessons 02-04", "lessons 04 and 06") names a notebook
``lessons/NN_*.ipynb``, unless the citation says "planned" right after it.

Reads the notebooks only (no kernel).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

LESSONS = Path(__file__).resolve().parents[1] / "lessons"
NOTEBOOKS = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
EXISTING = {int(p.name[:2]) for p in NOTEBOOKS}

NUM = r"\d{1,2}"
SEP = r"\s*(?:,|and|or|to|-|–|—)\s*"
CITATION = re.compile(rf"\b[Ll]essons?\s+({NUM}(?:{SEP}{NUM})*)")
PLANNED = re.compile(r"^\W{0,3}\(?\s*planned", re.I)


def cited(text: str) -> list[int]:
    """Lesson numbers cited in ``text`` (ranges expanded), skipping those marked planned."""
    out: list[int] = []
    for m in CITATION.finditer(text):
        if PLANNED.match(text[m.end():]):
            continue
        parts = re.split(rf"({SEP})", m.group(1))
        nums = [int(p) for p in parts[::2]]
        seps = [s.strip() for s in parts[1::2]]
        for i, n in enumerate(nums):
            out.append(n)
            if i < len(seps) and seps[i] in ("-", "–", "—", "to"):
                out.extend(range(n + 1, nums[i + 1]))
    return out


def test_citation_parser():
    text = ("Lessons 02–04 met it; lesson 1 and Lessons 04 and 06 too; lessons 07, 08 or 09; "
            "lesson 15 (planned); Lesson 3-5.")
    assert cited(text) == [2, 3, 4, 1, 4, 6, 7, 8, 9, 3, 4, 5]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_cited_lessons_exist(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    missing = sorted(set(cited(text)) - EXISTING)
    assert not missing, (f"{path.name} cites lesson(s) {missing}, which do not exist "
                         f"(existing: {sorted(EXISTING)}); write 'planned' after a citation "
                         "of a lesson still to come")
