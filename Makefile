# `make demo` and `make test` do the whole set-up on a fresh Debian machine, then run.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?= -q

.PHONY: demo test setup system-deps lint bench clean

demo: setup
	$(VENV)/bin/dciot demo $(DEMO_ARGS)

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

setup: system-deps $(STAMP)

system-deps:
	@bash tools/ensure-system-deps.sh

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) benchmarks/ingest.py

clean:
	rm -rf run .pytest_cache
