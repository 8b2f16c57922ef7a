# Two entry points on a fresh machine: `make demo` and `make test`. Each sets everything up first.
# torch is pinned to the CPU wheel these machines carry on disk; an unpinned torch would pull a
# multi-GB CUDA build. Override with e.g. `make test TORCH='torch==2.14.1'`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check '$(TORCH)'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[data,plot,dev,ray,ts,dysts,tensorboard,mlflow,wandb]'
	touch $@

demo: setup
	$(BIN)/longrnn demo

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests scripts examples

bench: setup
	$(BIN)/longrnn bench speed

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
