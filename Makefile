# The two commands: `make run` starts everything, `make test` passes the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: setup
	$(BIN)/exosuit dev

test: setup lint
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check exosuit workflows activities web tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var
