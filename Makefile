# Two entry points for newcomers: `make serve` and `make test`. Each builds the venv first:
# `serve` installs only what serving needs, every other target the development tools too.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed-base
STAMP := $(VENV)/.installed

GEN := tests/generators
GEN_PY := $(GEN)/.venv/.installed
GEN_NODE := $(GEN)/node_modules/.installed

.PHONY: serve test lint typecheck check bench bench-smoke mutation mutation-smoke generators screenshots clean

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

test: $(STAMP) generators
	$(BIN)/python -m pytest -q

# The client generators of tests/test_generated_clients.py, pinned, inside tests/generators/
# (ignored by git): openapi-python-client in its own venv; openapi-typescript, typescript and
# openapi-fetch from npm when npm is there (else those tests skip and say how to get them).
generators: $(GEN_PY)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(GEN_NODE); \
	else echo "npm not found: the TypeScript client tests will skip (apt-get install nodejs npm)"; fi

$(GEN_PY): $(GEN)/requirements.txt
	$(PY) -m venv $(GEN)/.venv
	$(GEN)/.venv/bin/python -m pip install --quiet -r $(GEN)/requirements.txt
	touch $@

$(GEN_NODE): $(GEN)/package.json
	cd $(GEN) && npm install --no-package-lock --no-audit --no-fund --loglevel=error
	touch $@

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

screenshots: $(STAMP)
	$(BIN)/python bench/screenshots.py

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache $(GEN)/.venv $(GEN)/node_modules
