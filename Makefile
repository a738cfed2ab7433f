# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint type browser bench fuzz faults docs rule-docs clean

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

# Debian's chromium, headless, for the HTML report's browser test (tests/test_html_report.py).
# Installed only when no chromium (or chrome) is on PATH; the package lists are refreshed only if the
# install fails without. Elsewhere: put a chromium or chrome on PATH, or name it in TENANTDB_CHROMIUM.
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
browser:
	@for b in chromium chromium-browser google-chrome chrome; do command -v $$b >/dev/null 2>&1 && exit 0; done; \
	[ -n "$$TENANTDB_CHROMIUM" ] || { \
	  echo "installing Debian's chromium (headless browser for tests/test_html_report.py)"; \
	  $(APT_INSTALL) >/dev/null 2>&1 \
	  || { apt-get update -qq >/dev/null 2>&1 && $(APT_INSTALL) >/dev/null; } \
	  || { echo "make browser: could not install chromium with apt-get (root and Debian's apt needed);" \
	            "install a chromium or chrome yourself and put it on PATH, or set TENANTDB_CHROMIUM=/path/to/it" >&2; exit 1; }; }

test: $(STAMP) lint type browser
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
