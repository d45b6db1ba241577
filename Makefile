# The two commands: `make run` starts everything, `make test` passes the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup run test lint test-tools bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml package.json package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	npm ci --no-audit --no-fund --silent
	mkdir -p web/static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js web/static/vendor/htmx.min.js
	touch $(STAMP)

run: setup
	$(BIN)/exosuit dev

# Debian tools the suite uses: docker-compose validates docker-compose.yml,
# Chromium runs the browser tests (driven by Playwright, never downloading a browser).
test-tools:
	@{ command -v docker-compose >/dev/null && test -x /usr/bin/chromium; } || { \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq docker-compose chromium; }

test: setup test-tools lint
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check exosuit workflows activities web tests benchmarks
	$(BIN)/ruff format --check exosuit workflows activities web tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/approval_latency.py
	$(BIN)/python benchmarks/queue_render.py

clean:
	rm -rf $(VENV) var
