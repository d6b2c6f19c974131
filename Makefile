# chatstream. Every setting comes from the environment and passes straight through, so
# `GATEWAY_PORT=9001 HEARTBEAT_INTERVAL_S=1 make stack` does what it says.

SHELL := /bin/bash
UV_VERSION ?= 0.13.9
UV := .tools/bin/uv
PY := .venv/bin/python
export UV_PYTHON_DOWNLOADS ?= never
# The tests and the benchmark start many gateway and worker processes; where the environment
# sets PYTHONDONTWRITEBYTECODE, each would compile chatstream's modules again.
unexport PYTHONDONTWRITEBYTECODE

# The real servers `make stack` and `make test` use.
REDIS_URL_LOCAL ?= redis://127.0.0.1:6379/0
AMQP_URL_LOCAL ?= amqp://guest:guest@127.0.0.1:5672/
WORKERS ?= 2
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: install install-runtime run stack redis-sentinel redis-cluster test test-tools lint typecheck unit bench fmt clean

## make install: the runtime and the development group (tests, linters), for working on chatstream.
install: .venv/.synced

## make install-runtime: the runtime dependencies alone, for a host that only runs chatstream.
install-runtime: .venv/.synced-runtime

$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --inexact: a sync after a lock change keeps the bench group that `make bench` installed, so a
# benchmark run by hand afterwards still measures CPU (psutil). One stamp per depth: the
# development sync includes the runtime, so it satisfies both; a runtime sync leaves the
# development stamp absent, and `make test` after `make run` adds the development group.
.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --inexact
	touch $@ .venv/.synced-runtime

.venv/.synced-runtime: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --inexact --no-dev
	touch $@

## make run: gateway and worker in one process on the embedded transports; needs no servers.
run: install-runtime
	env -u REDIS_URL -u AMQP_URL DOCS_DIR=$${DOCS_DIR:-docs} $(PY) -m launcher

## make stack: the gateway and $(WORKERS) worker processes on the local Redis and RabbitMQ.
# REDIS_URL defaults to the local Redis only where no other topology is chosen.
stack: export REDIS_URL := $(if $(REDIS_SENTINELS)$(REDIS_CLUSTER_NODES),$(REDIS_URL),$(or $(REDIS_URL),$(REDIS_URL_LOCAL)))
stack: install-runtime
	@.venv/bin/chatstream ingest docs --project docs
	@AMQP_URL=$${AMQP_URL:-$(AMQP_URL_LOCAL)} WORKERS=$(WORKERS) $(PY) -m launcher.stack

## make redis-sentinel: a local Sentinel group (primary, replica, 3 sentinels) of plain
## redis-server processes on free ports, until Ctrl-C; it prints the settings for make stack.
redis-sentinel: install-runtime
	$(PY) -m launcher.local_redis sentinel

## make redis-cluster: a local Redis Cluster (3 primaries, each with a replica) of plain
## redis-server processes on free ports, until Ctrl-C; it prints the settings for make stack.
redis-cluster: install-runtime
	$(PY) -m launcher.local_redis cluster

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck: install
	.venv/bin/mypy

## make test: lint, types, then every test against the real Redis and RabbitMQ.
test: lint typecheck test-tools
	TEST_REDIS_URL=$${TEST_REDIS_URL:-$(REDIS_URL_LOCAL)} \
	TEST_AMQP_URL=$${TEST_AMQP_URL:-$(AMQP_URL_LOCAL)} \
		$(PY) -m pytest $(PYTEST_ARGS)

# Chromium, Node.js with npm, and nginx, when missing (tests/install-system-packages.sh).
test-tools:
	tests/install-system-packages.sh

## make unit: only the tests that need no servers: Redis and RabbitMQ may be down.
unit: install
	$(PY) -m pytest -m "not real and not process" $(PYTEST_ARGS)

## make bench: the benchmark (about six minutes): bench-results/<timestamp>.json, a PNG, a table.
# nginx with nchan for the peer row, when missing and installable (bench/install-nchan.sh).
bench: install
	$(UV) sync --frozen --group bench
	bench/install-nchan.sh
	BENCH_REDIS_URL=$${BENCH_REDIS_URL:-$(REDIS_URL_LOCAL)} \
	BENCH_AMQP_URL=$${BENCH_AMQP_URL:-$(AMQP_URL_LOCAL)} $(PY) -m bench $(BENCH_ARGS)

fmt: install
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

clean:
	rm -rf .venv .tools .mypy_cache .ruff_cache .pytest_cache
