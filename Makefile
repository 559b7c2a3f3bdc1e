# README.md's two commands, `make demo` and `make test`: each installs what it needs first (a local virtualenv in
# .venv) when it is missing or older than pyproject.toml, so a fresh machine needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench

# The stamp records a finished install, so an interrupted one is redone rather than half-used.
STAMP := $(VENV)/.installed

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/meshward demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check compiler reconciler meshward tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/compile.py
