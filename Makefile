# The two commands a newcomer needs: `make demo` and `make test`. Everything else here serves them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ORDERSCTL := $(BIN)/ordersctl
# The tests never touch the demo's database or topics.
PYTEST_ARGS ?=

.PHONY: demo test install stack-up stack-down lint typecheck unit integration bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

stack-up:
	scripts/stack up

stack-down:
	scripts/stack down

demo: install stack-up
	$(ORDERSCTL) db migrate
	$(ORDERSCTL) topics create --dlq --partitions 4
	scripts/demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy ordersctl tests bench

test: install stack-up lint typecheck
	scripts/ensure-test-tools
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install stack-up
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/serve.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache test-output
