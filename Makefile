# Two entry points for newcomers: `make serve` and `make test`. Each builds the venv first:
# `serve` installs only what serving needs, every other target the development tools too.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed-base
STAMP := $(VENV)/.installed

.PHONY: serve test lint typecheck check bench bench-smoke mutation mutation-smoke clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(BASE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(BASE)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(BASE) $(STAMP)

serve: $(BASE)
	$(BIN)/vesanor-mock serve --scenario default

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench .ci
	$(BIN)/ruff format --check src tests bench .ci

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench-smoke: $(STAMP)
	$(BIN)/python bench/run.py --smoke

# Mutation testing of the domain (minutes to an hour: not in CI); see docs/reliability.md.
mutation: $(STAMP)
	$(BIN)/python .ci/mutation.py $(MUTATION_ARGS)

mutation-smoke: $(STAMP)
	$(BIN)/python .ci/mutation.py --smoke

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache
