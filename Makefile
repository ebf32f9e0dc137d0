# Vigil operator interface. `make help` lists every target.
# Settings come from VIGIL_* environment variables (see README, "Settings").

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
INFRA := $(PY) -m infra
PYTEST := $(PY) -m pytest
DEMO_SECONDS ?= 20


.PHONY: help install up down status clean fetch demo streams test lint test-unit test-integration test-e2e test-lifecycle format bench bench-streams bench-clock bench-lake bench-rest

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing Python dependencies into $(VENV) (first run downloads ~500 MB, mostly pyspark) ..."
	$(PY) -m pip install --progress-bar on -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## Create .venv and install Vigil with its pinned dependencies

fetch: $(STAMP) ## Download/build Kafka, MinIO, Trino and the Spark jars into the cache (first run only)
	$(INFRA) fetch

up: $(STAMP) ## Start Kafka, MinIO and Trino (idempotent), create topics, buckets and schemas
	$(INFRA) up

down: $(STAMP) ## Stop what `make up` started (by recorded PID); data is kept
	$(INFRA) down

status: $(STAMP) ## Show each service with PID, ports and health
	$(INFRA) status

clean: $(STAMP) ## Stop everything and delete the data folder (never the download cache)
	$(INFRA) clean

streams: up ## Run one stream worker in the foreground (more workers scale by partitions); metrics on :9108
	$(PY) -m streams.app worker --loglevel=info

demo: lake ## Stand up the platform and lake writer, stream a simulated plant, show what arrived (Kafka, Trino)
	$(PY) -m infra.demo --seconds $(DEMO_SECONDS)

lint: $(STAMP) ## Ruff and mypy over all code and tests (strict for contracts/ and streams/)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy contracts streams connectors jobs infra bench tests

format: $(STAMP) ## Apply ruff's formatter and safe fixes
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test-unit: $(STAMP) ## Unit tests (no services)
	$(PYTEST) -m unit tests/unit

test-integration: up ## Integration tests against the services `make up` started
	$(PYTEST) -m integration tests/integration

test-e2e: lake ## End-to-end: simulated plant -> stream stage -> lake writer -> exact counts in Trino (also after kill -9)
	$(PYTEST) -m e2e tests/e2e

test-lifecycle: up ## `make up` twice keeps one of each; `make down` leaves none of ours (restarts the platform)
	$(PYTEST) -m integration tests/lifecycle

.PHONY: lake lake-stop lake-status
lake: up ## Start the streaming lake writer in the background, restarted after a failure (Kafka -> Delta bronze/silver; docs/lake.md)
	$(PY) -m jobs.lake start

lake-stop: $(STAMP) ## Stop the lake writer (`make down` stops it too)
	$(PY) -m jobs.lake stop

lake-status: $(STAMP) ## The lake writer's PID and last micro-batch, or the failure that stopped it and the restart ahead
	$(PY) -m jobs.lake status

.PHONY: nightly nightly-schedule nightly-unschedule nightly-status sql
DATE ?=
nightly: up ## Nightly batch for DATE=YYYY-MM-DD (default yesterday) or DATE=A..B (backfill): compaction, retention, gold tables
	$(PY) -m jobs.nightly run --date "$(DATE)"

nightly-schedule: up ## Enable the nightly schedule (APScheduler daemon; VIGIL_NIGHTLY_SCHEDULE_CRON, default 02:30 UTC)
	$(PY) -m jobs.nightly schedule

nightly-unschedule: $(STAMP) ## Disable the nightly schedule
	$(PY) -m jobs.nightly unschedule

nightly-status: $(STAMP) ## Is the schedule on, its next run, the last runs
	$(PY) -m jobs.nightly status

Q ?=
sql: up ## Trino CLI on catalog vigil (interactive); `make sql Q="SELECT ..."` runs one query. Tables: docs/queries.md
	$(PY) -m infra.sql --query "$(Q)"

.PHONY: rest rest-stop rest-sweep token files files-once
rest: up ## Start the REST broker in the background on https://127.0.0.1:8443 (docs/rest.md); `make down` stops it
	$(PY) -m connectors.rest start

rest-stop: $(STAMP) ## Stop the REST broker
	$(PY) -m connectors.rest stop

rest-sweep: up ## Delete expired claim-check objects now (the broker also sweeps on a schedule)
	$(PY) -m connectors.rest sweep

ARGS ?= list
token: $(STAMP) ## API tokens: make token ARGS="issue --principal gw-1 [--role gateway|app|admin] [--topic T] [--gateway G]" | ARGS=list | ARGS="revoke ID"
	$(PY) -m connectors.rest token $(ARGS)

files: up ## Pick up dropped CSV/Parquet files (.data/files/inbox; FTP if VIGIL_FILES_FTP_HOST) into Kafka until Ctrl-C (docs/files.md)
	$(PY) -m connectors.files run

files-once: up ## One pickup pass over the inbox (and FTP), then exit with a summary
	$(PY) -m connectors.files once

.PHONY: bench-streams bench-lake bench-rest
bench: bench-streams bench-clock bench-lake bench-rest ## Every benchmark (about 10 min); results in bench/results/, method in bench/README.md

bench-streams: up ## Stream stage: samples/s vs a bare-consumer baseline, Faust-floor and pure-stage bounds, latency at half rate
	$(PY) -m bench.stream_stage

bench-clock: $(STAMP) ## Clock-skew estimator: error on simulated drifting clocks vs a plain low percentile (no services)
	$(PY) -m bench.clock_accuracy

bench-lake: lake ## Lake: writer rows/s vs pyarrow Parquet, freshness send->Trino, ten queries Trino vs DuckDB
	$(PY) -m bench.lake_ingest
	$(PY) -m bench.lake_queries

bench-rest: up ## REST ingest: requests/s and p99 vs a bare confluent-kafka producer
	$(PY) -m bench.rest_ingest

test: lint test-unit test-integration test-e2e test-lifecycle ## Everything CI runs: lint, unit, integration, e2e, lifecycle
