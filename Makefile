# Two entry points on a fresh machine: `make demo` and `make test`. Each sets everything up first.
# torch is pinned to the CPU wheel these machines carry on disk; an unpinned torch would pull a
# multi-GB CUDA build. Override with e.g. `make test TORCH='torch==2.14.1'`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup browser demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check '$(TORCH)'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[data,plot,dev,ray,ts,dysts,tensorboard,mlflow,wandb,torchrecurrent,gpu,cpp]'
	@$(MAKE) --no-print-directory browser
	touch $@

# The browser test of report.html (tests/test_report_browser.py): Debian's Chromium, installed when missing
# and possible (root, apt-get), and axe-core from npm for its accessibility rules. Never fails the set-up:
# without them that one test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } \
		|| echo "note: Chromium is not installed; the browser test of report.html will skip"
	@[ -f $(VENV)/axe/node_modules/axe-core/axe.min.js ] || npm install --silent --no-audit --no-fund \
		--prefix $(VENV)/axe axe-core@4 >/dev/null 2>&1 || echo "note: axe-core is not installed (npm); the browser test will skip"

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
