# diffkit: set up, demo, test, lab, space.  `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.diffkit-installed
CHROMIUM ?= /usr/bin/chromium
HOST ?= 127.0.0.1
PORT ?= 7860
export PIP_NO_INPUT := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: help setup demo test chromium lab student space lint clean

help:
	@echo "make setup     create .venv and install diffkit with its extras (once; again when pyproject.toml changes)"
	@echo "make demo      set up, then launch the demo hub on http://$(HOST):$(PORT)"
	@echo "make test      set up, then run the whole suite (pytest tests + nbval lessons/; JOBS=2 workers)"
	@echo "make chromium  install Debian's chromium for the browser tests if it is missing"
	@echo "make lab       set up, then JupyterLab on lessons/ (open the URL with ?token=... it prints)"
	@echo "make student   write the student version of the lessons (solutions stubbed) to $(STUDENT)"
	@echo "make space     assemble a ready-to-push Hugging Face Space under $(SPACE)"
	@echo "make lint      ruff over diffkit/, apps/, tests/, tools/, benchmarks/"
	@echo "make clean     remove build/, test-artifacts/, .pytest_cache/"

# The venv is rebuilt only when pyproject.toml changes: a second `make setup` is a no-op.
# torch==2.13.0 first (the CPU build, found on local disk) so that `torch>=2.2` below is
# already met and nothing reaches for a CUDA build. The rest goes through uv (a PyPI wheel):
# measured from clean on 2 cores, about 1 minute against 5-7 for pip. --compile-bytecode:
# imports stay fast even where PYTHONDONTWRITEBYTECODE is set. UV=0 uses plain pip.
UV ?= 1

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	if [ "$(UV)" = 1 ] && $(BIN)/python -m pip install --quiet uv; then \
	  $(BIN)/python -m uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev,bench,hf]'; \
	else \
	  $(BIN)/python -m pip install --quiet -e '.[dev,bench,hf]'; \
	fi
	$(BIN)/python -c "import torch, diffkit; assert torch.__version__.startswith('2.13.0')"
	touch $(STAMP)

demo: setup
	$(BIN)/python -m apps.hub --host $(HOST) --port $(PORT)

# Debian's chromium drives the browser test (Playwright's own browser download cannot work offline).
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  SUDO=; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi

# The suite in three runs. What does not serve the hub runs on $(JOBS) workers (pytest-xdist, a
# test file per worker, one torch thread each); the hub's app and browser tests run one at a
# time (they measure latencies and drive one browser); then the lessons, a notebook per worker.
JOBS ?= 2
test: setup chromium
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS) --dist loadfile -m "not app and not browser" tests
	$(BIN)/python -m pytest -m "app or browser" tests
	@if ls lessons/*.ipynb >/dev/null 2>&1; then \
	  DIFFKIT_FAST=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS) --dist loadfile \
	    --nbval-lax --nbval-current-env lessons/; \
	else echo "no lessons/*.ipynb yet: nbval skipped"; fi

lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir=lessons --ip=$(HOST) --no-browser \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# The lessons for a class: every cell tagged `solution` replaced by a stub that still runs (the
# exercise's check then fails until the student answers); see tools/student.py.
STUDENT ?= build/student

student: setup
	$(BIN)/python tools/student.py --out $(STUDENT)

# A self-contained Space folder: app.py at its root, the Space card, requirements, the engine and the apps.
SPACE ?= build/space

space:
	rm -rf $(SPACE)
	mkdir -p $(SPACE)
	cp apps/app.py $(SPACE)/app.py
	cp apps/requirements.txt $(SPACE)/requirements.txt
	cp apps/README.md $(SPACE)/README.md
	cp -r diffkit apps $(SPACE)/
	find $(SPACE) -name '__pycache__' -type d -prune -exec rm -rf {} +
	@echo "Space ready in $(SPACE): push this folder to a Gradio Space"

lint: setup
	$(BIN)/ruff check diffkit apps tests tools benchmarks

clean:
	rm -rf build test-artifacts .pytest_cache
