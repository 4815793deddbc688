# One-command entry points. `make demo` and `make test` work on a fresh clone (they build .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo distributed-demo test lint unit faults bench emulator clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

## The embedded demo: sample archive -> local Hyperline emulator, as a real Airflow DagRun.
## Its closing instructions use UI_PORT (Airflow UI, default 8080) and PORT (emulator, default 8090).
UI_PORT ?= 8080
demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m hyperline_devtools.demo --ui-port $(UI_PORT) --emulator-port $(PORT)

## The multi-worker deployment (CeleryExecutor, 2 workers, state in S3, ledger in Postgres) on this
## machine, without Docker: needs Postgres on 127.0.0.1:5432 and Redis on 127.0.0.1:6379. Prints the UI
## address and which worker ran what, then stops what it started (DEMO_ARGS=--keep: after Enter).
distributed-demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m hyperline_devtools.distributed_demo $(DEMO_ARGS)

## Every test (lint first: CI runs exactly this).
test: $(STAMP) lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests --ignore=tests/dags --ignore=tests/faults

faults: $(STAMP)
	$(BIN)/pytest -m faults

## Benchmarks: a DagRun, the pipeline alone (one process and a pool), references, scaling and memory, a
## profile, a 12-day DagRun under a real scheduler with 1 and 2 slots (needs Postgres and Redis on
## 127.0.0.1) -> bench/RESULTS.md (~20 min).
## `make bench BENCH_ARGS=--quick` is a small smoke check (bench/data/RESULTS-quick.md). Focused
## benchmarks run alone: bench/bench_source.py (source path), bench/bench_hook.py (hook, with 429s).
bench: $(STAMP)
	$(BIN)/python bench/bench_all.py $(BENCH_ARGS)

## A local Hyperline ingest emulator on http://127.0.0.1:$(PORT) (API key test_local); `make emulator PORT=8091`.
PORT ?= 8090
emulator: $(STAMP)
	$(BIN)/python -m hyperline_devtools.emulator --port $(PORT) --api-key test_local

clean:
	rm -rf .demo .demo-distributed .airflow-test .pytest_cache .ruff_cache
