# Two commands on a fresh machine: `make up` runs secretsd (server + agent) on the embedded
# SQLite store, `make test` runs the test suite. Both build the virtual environment first.
PYTHON ?= python3
# A pipe fails when its first command does (pip's progress goes through sed).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV := .venv
BIN := $(VENV)/bin
# One stamp per install: `make up` installs what it runs, `make test` adds the test tools.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
DATA_DIR ?= ./data

.PHONY: up test lint format typecheck bench layer clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	@echo "secretsd: installing the server and agent into $(VENV) (a minute at most, the first time)"
	$(BIN)/python -m pip install --progress-bar off -e '.[server,agent]' \
		| sed -n -u -E 's/^(Collecting|Successfully installed)/  \1/p'
	touch $(RUN_STAMP)

# The dev extra holds everything the run install does, so it stamps both.
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP) $(RUN_STAMP)

up: $(RUN_STAMP)
	$(BIN)/secretsd up --data-dir $(DATA_DIR)

test: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

format: $(DEV_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(DEV_STAMP)
	$(BIN)/python bench/server.py

# The self-contained agent layer for Lambda (deploy/lambda/README.md): needs root and
# debootstrap; minutes the first time, then cached in ~/.cache/secretsd by its inputs.
layer: $(RUN_STAMP)
	$(BIN)/python deploy/lambda/build_layer.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache .import_linter_cache .mypy_cache
