# tracing-ui: `make run` brings everything up, `make test` runs the whole suite.
# With DATABASE_URL / REDIS_URL unset, both use a project-local PostgreSQL and Redis (wheels, data in .data/).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# Embedded services unless the environment names real ones; prints `export ...` lines to eval.
SERVICES = eval "$$($(PY) -m tracing_ui.devservices up)"

# The first interpreter that is Python >= 3.12 (Django 6 needs it).
FIND_PYTHON = for candidate in "$$PYTHON" python3.13 python3.12 $$HOME/.pyenv/versions/3.13*/bin/python3 \
	$$HOME/.pyenv/versions/3.12*/bin/python3 /usr/local/bin/python3 /usr/bin/python3 python3; do \
	  [ -n "$$candidate" ] || continue; \
	  if command -v "$$candidate" >/dev/null 2>&1 && "$$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	    echo "$$candidate"; exit 0; fi; \
	done; exit 1

.PHONY: help install run test e2e bench lint browser services-down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@python=$$($(FIND_PYTHON)) || { echo "error: no Python >= 3.12 found (Django 6 needs it). Install one, or set PYTHON=/path/to/python3.12" >&2; exit 1; }; \
	echo "using $$python ($$($$python --version))"; \
	[ -x $(PY) ] || $$python -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

install: $(VENV)/.installed ## create .venv and install everything

browser: ## install Debian's Chromium for the browser tests, if missing (needs root)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium missing and not root; browser tests will be skipped (apt-get install chromium)" >&2; fi; }

run: install ## everything up (web, worker, beat, demo traffic); prints the URL; Ctrl-C stops it
	PORT=$(PORT) $(PY) -m tracing_ui.runstack

test: install browser ## the whole suite (unit, API, end-to-end, browser)
	@$(SERVICES); $(PY) -m pytest -q $(PYTEST_ARGS)

e2e: install browser ## only the browser tests
	@$(SERVICES); $(PY) -m pytest -q -m e2e $(PYTEST_ARGS)

bench: install ## benchmarks; prints figures (BENCH_SPANS=10000000 for the 10M-span store)
	@$(SERVICES); $(PY) -m bench $(BENCH_ARGS)

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@$(SERVICES); $(VENV)/bin/mypy .

services-down: ## stop the embedded PostgreSQL and Redis
	$(PY) -m tracing_ui.devservices down

clean: services-down ## remove the virtualenv and all local data
	rm -rf $(VENV) .data staticfiles
