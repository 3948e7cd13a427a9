# The README's two promises: `make run` and `make test`, on a machine with Python 3.11+ and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "newsdesk needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.run-installed
	$(BIN)/newsdesk run

lint: $(VENV)/.test-installed
	$(BIN)/ruff check newsdesk scheduler.py tests benchmarks
	$(BIN)/mypy newsdesk scheduler.py

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.run-installed
	$(BIN)/python benchmarks/bench_pipeline.py

clean:
	rm -rf $(VENV) feeds/*.xml feeds/*.json feeds/*.html feeds/*.opml outbox newsdesk.db
