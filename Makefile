# The two commands a newcomer needs: `make demo` and `make test`.
.PHONY: demo test lint typecheck unit bench clean venv lock

VENV := .venv
BIN := $(VENV)/bin
DEMO_STORE ?= sqlite:///.cmdb/demo.db

venv:
	@scripts/bootstrap.sh

## demo: set up, load the bundled sample estate into the embedded store and print a summary
demo: venv
	@rm -f .cmdb/demo.db .cmdb/demo.db-wal .cmdb/demo.db-shm
	@$(BIN)/cmdb --store $(DEMO_STORE) load --sample
	@$(BIN)/cmdb --store $(DEMO_STORE) stats
	@echo
	@echo "== Impact of losing fraud-fra-01 (a deliberate single point of failure in the sample) =="
	@$(BIN)/cmdb --store $(DEMO_STORE) impact incident fraud-fra-01 --urgency high
	@echo
	@echo "== Expiry tasks: what one cycle would raise, to whom and why (dry run; cmdb expiry check raises them) =="
	@$(BIN)/cmdb --store $(DEMO_STORE) expiry check --dry-run
	@echo
	@echo "== Discovery: a TCP connect scan of this machine's loopback address (common ports) =="
	@$(BIN)/cmdb --store $(DEMO_STORE) scan 127.0.0.1 --no-dns
	@echo
	@echo "The README's examples run against this store:  . $(BIN)/activate && export CMDB_STORE=$(DEMO_STORE)"
	@echo "Try:  $(BIN)/cmdb --store $(DEMO_STORE) ci show sw-core-fra-1"
	@echo "      $(BIN)/cmdb --store $(DEMO_STORE) ci search --class Service"
	@echo "      $(BIN)/cmdb --store $(DEMO_STORE) impact spof --tier 1"
	@echo "      $(BIN)/cmdb --store $(DEMO_STORE) runs list"
	@echo "      $(BIN)/cmdb --store $(DEMO_STORE) licences"
	@echo "      $(BIN)/cmdb --store $(DEMO_STORE) serve   # the HTTP API, docs at http://127.0.0.1:8000/api/v1/docs"

## test: lint, type-check and run every test, starting and stopping the test servers itself
test:
	@CMDB_WITH_NEO4J=1 CMDB_WITH_TEST_SERVERS=1 scripts/bootstrap.sh
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

## bench: the benchmark scripts (they print figures; not part of the tests)
bench: venv
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python bench/ingest_embedded.py
	$(BIN)/python bench/neo4j_ingest.py
	$(BIN)/python bench/neo4j_pipeline.py
	$(BIN)/python bench/impact.py
	$(BIN)/python bench/snmp.py
	$(BIN)/python bench/scan.py
	$(BIN)/python bench/ssh.py
	$(BIN)/python bench/expiry.py
	$(BIN)/python bench/import.py
	$(BIN)/python bench/api.py

## lock: requirements.lock, the hashed runtime dependencies the Dockerfile installs (after editing pyproject.toml)
lock: venv
	$(BIN)/python -m pip install -q uv
	$(BIN)/python -m uv pip compile pyproject.toml --python-version 3.11 --universal --generate-hashes --no-header \
		-q -o requirements.lock.body
	@sed -n '/^# /p' requirements.lock | cat - requirements.lock.body > requirements.lock.new
	@rm requirements.lock.body && mv requirements.lock.new requirements.lock

clean:
	rm -rf .cmdb .pytest_cache .mypy_cache .ruff_cache
