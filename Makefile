# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint type bench fuzz faults docs rule-docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tenantdb demo fixtures/example --count 1000

lint: $(STAMP)
	$(BIN)/ruff check pytest_tenantdb tests benchmarks
	$(BIN)/ruff format --check pytest_tenantdb tests benchmarks

type: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint type
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest -q
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

bench: $(STAMP)
	$(BIN)/python -m benchmarks --size full

# thousands of tenantdb invocations on random projects; prints runs, tracebacks (must be 0) and
# the exit code histogram (docs/reference/cli.md)
fuzz: $(STAMP)
	$(BIN)/python -m benchmarks.fuzz_cli --size full

# fault injection on the fleet migrator: kills, disk full, locks, app writes, concurrent runs,
# corrupt files; every tenant checked after each trial (docs/faults.md)
faults: $(STAMP)
	$(BIN)/python -m benchmarks.faults --trials 420

rule-docs: $(STAMP)
	$(BIN)/python -c 'from pathlib import Path; from pytest_tenantdb.lint.rules import write_rule_docs; write_rule_docs(Path("docs/rules"))'

docs: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .coverage .coverage.* .pytest_cache .mypy_cache .ruff_cache site
