# The two entry points a newcomer needs: `make demo` and `make test`.
# Prefer Debian's optimised python3.11 when present (about 2x faster on pure-Python code).
PYTHON ?= $(shell command -v /usr/bin/python3.11 >/dev/null 2>&1 && echo /usr/bin/python3.11 || echo python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit integration bench clean

# kinesis-mock (npm `kinesis-local`) for the Kinesis resharding tests: moto's resharding is wrong.
KINESIS_LOCAL := tools/kinesis-local/node_modules/.package-lock.json

$(KINESIS_LOCAL): tools/kinesis-local/package-lock.json
	npm ci --prefix tools/kinesis-local --no-audit --no-fund --silent

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sluice demo

test: $(STAMP) $(KINESIS_LOCAL)
	$(VENV)/bin/ruff check worker tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests

lint: $(STAMP)
	$(VENV)/bin/ruff check worker tests bench
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(VENV)/bin/python -m pytest -q tests/unit

integration: $(STAMP) $(KINESIS_LOCAL)
	$(VENV)/bin/python -m pytest -q tests/integration tests/faults

bench: $(STAMP)
	$(VENV)/bin/python bench/parsers.py
	$(VENV)/bin/python bench/stream_memory.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Every deployment validator (Dockerfile, compose, Helm chart, ECS template, dashboards): tools/deploy/lint.py.
# `make test` runs it first, so `.ci/run` does too.
.PHONY: lint-deploy
lint-deploy: $(STAMP)
	$(VENV)/bin/ruff check tools/deploy deploy/compose/samples
	$(VENV)/bin/python tools/deploy/lint.py

test: lint-deploy
