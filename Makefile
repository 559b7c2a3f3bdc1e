# The three commands of README.md. Everything runs from a local virtualenv in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'

demo:
	$(BIN)/meshward demo

test:
	$(BIN)/python -m pytest -n 2 --dist loadfile -p no:cacheprovider

lint:
	$(BIN)/ruff check compiler reconciler meshward tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

bench:
	$(BIN)/python bench/compile.py
