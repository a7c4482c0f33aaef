# The two commands a newcomer needs: `make demo` and `make test`. Everything else here serves them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ORDERSCTL := $(BIN)/ordersctl
# The tests never touch the demo's database or topics.
PYTEST_ARGS ?=

# The exact versions, with hashes: requirements.lock (runtime: the image, the wheel test) and
# requirements-dev.lock (runtime + dev: this virtualenv, CI). pyproject.toml states only ranges.
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
# `make lock` keeps every pin it can; `make lock LOCK_ARGS=--upgrade` moves all to the newest in range.
LOCK_ARGS ?=
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' $(LOCK_ARGS)

.PHONY: demo test test-citus unit install lock stack-up stack-up-secure stack-up-ha stack-down lint typecheck bench chaos \
	chaos-citus chaos-ha clean

# The locked dependencies, then the project itself (editable) without resolving anything: the lock is the
# whole environment, and pip check proves it satisfies every requirement.
$(BIN)/.installed: pyproject.toml $(DEV_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/pip check
	touch $@

# pip compiles a wheel's modules when it installs them; an editable install leaves ours to the first import, which
# never writes them where PYTHONDONTWRITEBYTECODE is set (CI, many images): every command would compile the package
# again. compileall rewrites only what changed since (by timestamp, also where SOURCE_DATE_EPOCH asks for hashes).
install: $(BIN)/.installed
	$(BIN)/python -m compileall -q --invalidation-mode timestamp ordersctl

# After changing a dependency in pyproject.toml (until then `make install` stops at pip check). The lock tool
# is uv, itself pinned (with its hash) in the dev lock. The next `make install` applies the new pins.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c $(DEV_LOCK) uv
	$(UV_COMPILE) -o $(LOCK)
	$(UV_COMPILE) --extra dev --extra chaos --extra otel -c $(LOCK) -o $(DEV_LOCK)

stack-up:
	scripts/stack up

# The secured stack (TLS, SASL, mTLS, PgBouncer) beside the plain one, for the tests in tests/secure. It sets
# Kafka's ACLs with the virtualenv's client, hence install first.
stack-up-secure: install
	ORDERS_STACK_SECURE=1 scripts/stack up

# The HA PostgreSQL (pg_auto_failover: a monitor, a primary and a synchronous secondary) for tests/ha, where it can
# be had: its faults drop packets with nftables, which takes root (who also installs the packages with apt-get).
# Elsewhere the lane is skipped, and says so.
stack-up-ha:
	@if [ "$$(id -u)" = 0 ]; then ORDERS_STACK_PG=ha scripts/stack up; \
	else echo "make: the HA lane (tests/ha) needs root (apt-get, nftables): skipped"; fi

stack-down:
	scripts/stack down
	ORDERS_STACK_SECURE=1 scripts/stack down
	ORDERS_STACK_PG=ha scripts/stack down

demo: install stack-up
	$(ORDERSCTL) db migrate
	$(ORDERSCTL) topics create --dlq --partitions 4
	scripts/demo

# ruff, then radon's cyclomatic complexity: no function of ordersctl, chaos, bench, tests or scripts above 15.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/check-complexity

typecheck: install
	$(BIN)/mypy ordersctl tests bench chaos

test: install stack-up stack-up-secure stack-up-ha lint typecheck
	scripts/ensure-test-tools
	scripts/ensure-helm >/dev/null
	$(BIN)/pytest $(PYTEST_ARGS)
	@if ORDERS_STACK_PG=citus scripts/stack available; then $(MAKE) --no-print-directory test-citus; \
	else echo "make test: the Citus lane (make test-citus) did not run: Citus is not installed and ORDERS_STACK_CITUS_SRC names no source tarball"; fi

# The Citus lane: the integration and end-to-end tests that concern PostgreSQL, against a coordinator and two
# workers (ORDERS_STACK_PG=citus scripts/stack up; Citus is built once from ORDERS_STACK_CITUS_SRC when it is not
# installed), plus the worker-node kill (tests/e2e/test_citus_faults.py) and 20,000 orders through two workers
# (tests/e2e/test_citus_volume.py). Left out: the tests of other services
# (Kafka topics and cluster, Redis connections, the wheel, the browser page, the API tests that never reach
# PostgreSQL, the DLQ replay's limits, the consumer group's view in status) and those that stop the plain stack's
# services.
CITUS_TESTS := tests/integration/test_outbox_relay.py tests/integration/test_order_store.py \
	tests/integration/test_migrations.py tests/integration/test_api.py tests/integration/test_cache.py \
	tests/e2e/test_ingest.py tests/e2e/test_ingest_faults.py tests/e2e/test_dlq.py tests/e2e/test_cli_ops.py \
	tests/e2e/test_status_trace.py \
	tests/e2e/test_citus_faults.py tests/e2e/test_citus_cli.py tests/e2e/test_citus_volume.py
CITUS_DESELECT := not outage and not redis_stopped and not postgres_down and not errors_are_json and not openapi \
	and not swagger and not method_not_allowed and not bearer and not replay_loop_stops and not replay_limit_counts \
	and not nobody_consuming and not members_of_a_running_group
test-citus: install
	ORDERS_STACK_PG=citus scripts/stack up
	ORDERS_TEST_ADMIN_DSN=postgresql://ordersctl:ordersctl@127.0.0.1:55431/orders_test \
	ORDERS_TEST_CITUS_WORKERS=127.0.0.1:55432,127.0.0.1:55433 \
	$(BIN)/pytest -p no:cacheprovider $(CITUS_TESTS) -k "$(CITUS_DESELECT)" $(PYTEST_ARGS)

# Everyday work: the unit tier (tests/unit) in seconds, with the stack down or up (it talks to no service). The
# few unit tests marked slow, which wait out a client's timeout against an address where nothing listens, run
# in `make test` with everything else.
unit: install
	$(BIN)/pytest tests/unit -m "not slow" -n auto $(PYTEST_ARGS)

bench: install stack-up
	@echo "PostgreSQL profile: $$(scripts/stack pg-profile)"
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/ingest.py --latency
	$(BIN)/python bench/tracing.py
	$(BIN)/python bench/serve.py

# The fault-injection run on the 3-broker cluster (chaos/README.md); the short form runs inside `make test`.
CHAOS_ARGS ?= --count 1000000 --per-kind 30 --seed 1
chaos: install
	ORDERS_STACK_KAFKA_NODES=3 scripts/stack up
	$(BIN)/python -m chaos run --out chaos/out/$$(date +%Y%m%dT%H%M%S) --recreate-db $(CHAOS_ARGS)

# The same run against the Citus stack (the coordinator's database orders_chaos): a worker node killed -9 and
# started again 20 s later (citus-worker-kill) instead of the plain PostgreSQL's crash and partition.
chaos-citus: install
	ORDERS_STACK_KAFKA_NODES=3 scripts/stack up
	ORDERS_STACK_PG=citus scripts/stack up
	$(BIN)/python -m chaos run --out chaos/out/citus-$$(date +%Y%m%dT%H%M%S) --recreate-db --pg citus \
		--dsn postgresql://ordersctl:ordersctl@127.0.0.1:55431/orders_chaos $(CHAOS_ARGS)

# Against the HA PostgreSQL (root: apt-get, nftables): its primary killed -9 (ha-primary-kill), the secondary
# promoted, the old primary back as the secondary 30 s later; ordersctl on the multi-host DSN.
chaos-ha: install
	ORDERS_STACK_KAFKA_NODES=3 scripts/stack up
	ORDERS_STACK_PG=ha scripts/stack up
	$(BIN)/python -m chaos run --out chaos/out/ha-$$(date +%Y%m%dT%H%M%S) --recreate-db --pg ha \
		--dsn "$$(ORDERS_STACK_PG=ha scripts/stack ha-dsn orders_chaos)" $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache test-output build dist
