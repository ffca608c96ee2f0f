# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)

export PATH := $(BIN):$(PATH)
export PYTHONPATH := $(CURDIR)
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False

FEED_PORT ?= 8810
SANDBOX_PORT ?= 8801
DATE ?=

.PHONY: help install demo test check lint run serve up sandbox e2e bench erase restore clean
help:
	@echo "make demo     run the whole pipeline once on the sandbox and the embedded SQLite warehouse"
	@echo "make test     lint, then the whole test suite (what CI runs: services started as needed)"
	@echo "make check    the unit tier: rules, property tests, clients on a fake transport; no services"
	@echo "make lint     ruff format --check and ruff check"
	@echo "make run      run the DAG once for the hour ending at DATE (default now) against AIRFLOW_CONN_GIFTPRO_DEFAULT"
	@echo "              CONFIRM=1 confirms a mass change the guard stopped"
	@echo "make serve    run the converted.in feed service on FEED_PORT ($(FEED_PORT))"
	@echo "make up       run Airflow (UI on :8080) with the GiftPro sandbox"
	@echo "make sandbox  run the GiftPro sandbox on SANDBOX_PORT ($(SANDBOX_PORT))"
	@echo "make bench    run the benchmarks"
	@echo "make erase    EMAIL=... remove one person from the warehouse, the feed and staging, for good"
	@echo "make restore  EMAIL=... lift an erasure (both need CUSTOMER_FEED_ERASURE_KEY)"
	@echo "make e2e      a distributed run: Airflow on PostgreSQL with Celery workers, REST trigger, backfill"

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

demo: install
	$(BIN)/python scripts/demo.py

test: install lint
	scripts/test.sh

check: install
	$(BIN)/python -m pytest -q tests/unit --hypothesis-profile=check

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

run: install
	$(BIN)/python scripts/run_dag.py $(if $(DATE),--date "$(DATE)") $(if $(CONFIRM),--confirm-mass-change)

serve: install
	$(BIN)/python -m include.feed_service --port $(FEED_PORT)

sandbox: install
	$(BIN)/python -m sandbox.giftpro --port $(SANDBOX_PORT)

up: install
	scripts/up.sh

bench: install
	$(BIN)/python bench/incremental.py
	$(BIN)/python bench/feed.py
	$(BIN)/python bench/scale.py --orders 1M,3M

e2e: install
	$(BIN)/python scripts/e2e.py

erase: install
	@test -n "$(EMAIL)" || { echo "usage: make erase EMAIL=someone@example.com"; exit 2; }
	$(BIN)/python -m include.erasure "$(EMAIL)"

restore: install
	@test -n "$(EMAIL)" || { echo "usage: make restore EMAIL=someone@example.com"; exit 2; }
	$(BIN)/python -m include.erasure --restore "$(EMAIL)"

clean:
	rm -rf data .airflow .airflow-demo
