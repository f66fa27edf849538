"""The docs say what the code does: `make help` lists every Makefile target, the README and the
Space card name every tab of the hub and the README every target, the docs they link to exist,
and no file of the project points outside it (to a tracker's issue numbers or to design notes that
are not in the repository)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from apps import hub

ROOT = Path(__file__).resolve().parents[1]
TEXT = (".md", ".py", ".ipynb", ".toml", ".yml", ".yaml", ".txt", ".cfg")
OUTSIDE = re.compile(r"(?i:\bissues? #?\d+\b)|\bDESIGN\.md\b|\bSTYLE\.md\b|\bAPI\.md\b|"
                     r"\.\./shared\b")


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / p for p in out
            if (p.endswith(TEXT) or Path(p).name in ("Makefile", "run")) and (ROOT / p).is_file()]


def _targets() -> set[str]:
    make = (ROOT / "Makefile").read_text()
    return {t for t in re.findall(r"^([a-z][\w-]*):(?!=)", make, re.M)}


def test_no_file_points_outside_the_repository():
    hits = []
    for path in _tracked():
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()[:120]}")
    assert not hits, "\n".join(hits)


@pytest.mark.timeout(60)
def test_make_help_lists_every_target():
    text = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=30).stdout
    listed = set(re.findall(r"^make (\w[\w-]*)", text, re.M))
    assert listed == _targets() - {"help"}, (listed, _targets())


def test_readme_names_every_tab_and_target():
    readme = (ROOT / "README.md").read_text()
    card = (ROOT / "apps" / "README.md").read_text()
    for module in hub.TABS:
        assert module.TITLE in readme, f"README.md does not describe the {module.TITLE} tab"
        assert module.TITLE in card, f"apps/README.md does not describe the {module.TITLE} tab"
    for target in _targets() - {"help"}:
        assert f"make {target}" in readme or f"`{target}`" in readme, target
    assert "token" in readme  # how to open `make lab`'s JupyterLab


def test_linked_docs_exist():
    for doc in ("README.md", "course/README.md", "lessons/README.md", "apps/README.md",
                "docs/design.md"):
        text = (ROOT / doc).read_text()
        for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if link.startswith(("http://", "https://")):
                continue
            assert (ROOT / doc).parent.joinpath(link).resolve().exists(), f"{doc}: {link}"
