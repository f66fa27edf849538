"""The project's own files agree with each other: pyproject.toml and environment.yml declare the
same dependencies, the Space's requirements cover the engine's, the Makefile installs a torch the
package accepts, and `make space` assembles a folder whose app imports its own copy of diffkit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # python 3.10
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _reqs(lines) -> dict[str, SpecifierSet]:
    out = {}
    for line in lines:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name not in out, f"{name} declared twice"
        out[name] = req.specifier
    return out


def _pyproject_all() -> dict[str, SpecifierSet]:
    project = _pyproject()["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    return _reqs(lines)


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _env_pip() -> list[str]:
    pips = [d["pip"] for d in _environment()["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pips) == 1, "environment.yml must have one pip section"
    return pips[0]


def test_environment_declares_the_same_dependencies_as_pyproject():
    assert _reqs(_env_pip()) == _pyproject_all()


def test_environment_python_satisfies_requires_python():
    conda = [d for d in _environment()["dependencies"] if isinstance(d, str)]
    python = [d for d in conda if re.fullmatch(r"python\s*[=<>!~]*.*", d)]
    assert len(python) == 1 and "pip" in conda
    version = re.sub(r"^python\s*=*", "", python[0])
    requires = SpecifierSet(_pyproject()["project"]["requires-python"])
    assert Version(version) in requires


def test_extras_are_the_documented_ones():
    extras = _pyproject()["project"]["optional-dependencies"]
    assert set(extras) == {"dev", "bench", "hf"}
    dev = {canonicalize_name(Requirement(r).name) for r in extras["dev"]}
    assert {"pytest", "hypothesis", "nbval", "jupyterlab", "ipywidgets", "ipykernel",
            "gradio-client", "playwright", "ruff"} <= dev
    assert "diffusers" in {canonicalize_name(Requirement(r).name) for r in extras["bench"]}
    assert "transformers" in {canonicalize_name(Requirement(r).name) for r in extras["hf"]}


def test_makefile_installs_a_torch_the_package_accepts_before_the_package():
    make = (ROOT / "Makefile").read_text()
    pinned = re.search(r"pip install[^\n]*torch==([\w.]+)", make)
    editable = re.search(r"pip install[^\n]*-e '?\.\[([\w,]+)\]", make)
    assert pinned and editable and pinned.start() < editable.start()
    assert Version(pinned.group(1)) in _pyproject_all()["torch"]
    extras = _pyproject()["project"]["optional-dependencies"]
    assert set(editable.group(1).split(",")) == set(extras)


def test_space_requirements_cover_the_engine():
    core = _reqs(_pyproject()["project"]["dependencies"])
    lines = [ln.strip() for ln in (ROOT / "apps" / "requirements.txt").read_text().splitlines()]
    space = _reqs([ln for ln in lines if ln and not ln.startswith("#")])
    gradio = core.pop("gradio")  # a Space installs gradio itself, from the card's sdk_version
    assert space == core
    card = (ROOT / "apps" / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["sdk"] == "gradio" and header["app_file"] == "app.py"
    assert Version(header["sdk_version"]) in gradio


def test_ci_runs_the_readme_test_command():
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    text = ci.read_text()
    assert "set -euo pipefail" in text and "chromium" in text
    assert re.search(r"^make test\b", text, re.M)
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make \w+)", quick, re.M)
    assert commands[:2] == ["make demo", "make test"]
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    assert {c.split()[1] for c in commands} <= targets


@pytest.mark.timeout(120)
def test_make_space_builds_a_self_contained_space(tmp_path):
    space = tmp_path / "space"
    subprocess.run(["make", "-s", "space", f"SPACE={space}"], cwd=ROOT, check=True,
                   capture_output=True, timeout=60)
    for name in ("app.py", "requirements.txt", "README.md", "diffkit/__init__.py",
                 "apps/hub.py", "apps/paths_tab.py"):
        assert (space / name).is_file(), name
    assert not list(space.rglob("__pycache__"))
    # the Space's app imports the copy of diffkit beside it, and builds the hub
    code = ("import app, diffkit, gradio; "
            f"assert diffkit.__file__.startswith({str(space)!r}), diffkit.__file__; "
            "assert isinstance(app.demo, gradio.Blocks)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    subprocess.run([sys.executable, "-c", code], cwd=space, env=env, check=True, timeout=90)
