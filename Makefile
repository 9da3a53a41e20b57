# One entry point for people and CI alike. Every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[worker,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m worker.demo

test: $(STAMP)
	$(BIN)/python -m pytest -m "not soak"

lint: $(STAMP)
	$(BIN)/ruff check producer worker tests
	$(BIN)/ruff format --check producer worker tests
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m tests.bench

soak: $(STAMP)
	$(BIN)/python -m pytest -m soak -p no:cacheprovider

clean:
	rm -rf $(VENV) .sluice .pytest_cache .mypy_cache .ruff_cache
