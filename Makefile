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

.PHONY: help setup demo test test-fast chromium lab space lint clean

help:
	@echo "make demo   set up, then launch the demo hub on http://$(HOST):$(PORT)"
	@echo "make test   set up, then run the whole suite (pytest tests + nbval lessons/)"
	@echo "make lab    set up, then open JupyterLab on lessons/"
	@echo "make space  assemble a ready-to-push Hugging Face Space under $(SPACE)"
	@echo "make lint   ruff over diffkit/, apps/, tests/"

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

test: setup chromium
	$(BIN)/python -m pytest tests
	@if ls lessons/*.ipynb >/dev/null 2>&1; then \
	  DIFFKIT_FAST=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env lessons/; \
	else echo "no lessons/*.ipynb yet: nbval skipped"; fi

lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir=lessons --ip=$(HOST) --no-browser \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root)

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
	$(BIN)/ruff check diffkit apps tests

clean:
	rm -rf build test-artifacts .pytest_cache
