# speech-tools: `make run` starts the server with the bundled models; `make test` runs the tests.
# Both set up .venv first (from constraints.txt) when it is missing or out of date.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := agent_tools speech_backend policies evals
export SPEECH_TOOLS_ENGINES__CACHE_DIR ?= $(CURDIR)/.cache/speech-tools

.PHONY: install run test check lint format bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,multilingual]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/speech-tools serve

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python benchmarks/engines.py
	$(BIN)/python benchmarks/tool_calls.py
	$(BIN)/python benchmarks/streaming.py

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
