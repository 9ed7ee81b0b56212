# One entry point for people and CI. Every target installs what it needs (uv into .venv).
SHELL := /bin/bash
.DEFAULT_GOAL := help
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_WORKERS ?= 2

.PHONY: help install test test-tour lint format typecheck unit integration infra e2e synth demo demo-once bench schemas openapi pr clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet --user uv
	$(UV) sync --frozen
	@touch $@

install: $(VENV)/.synced  ## Create .venv with everything (uv; installs uv with pip if missing)

lint: install  ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install  ## ruff format and autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install  ## mypy with the pydantic plugin
	$(VENV)/bin/mypy

test: lint typecheck  ## Everything CI runs: lint, types, unit, integration, infra and e2e tests (the tour: demo-once)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -p no:cacheprovider --durations=25 -m "not tour" tests/unit tests/integration tests/infra tests/e2e

test-tour: install  ## The demo tour as an e2e test on the suite's local cloud, then the scan of every function's log
	$(PY) -m pytest -p no:cacheprovider tests/e2e/test_workflows.py tests/e2e/test_workflows_logs.py

unit: install  ## Unit tests only (no network)
	$(PY) -m pytest tests/unit

integration: install  ## Integration tests (moto in process)
	$(PY) -m pytest tests/integration

infra: install  ## CDK assertions, cdk-nag, cfn-lint, real bundling
	$(PY) -m pytest tests/infra

e2e: install  ## End-to-end tests against the embedded local cloud
	$(PY) -m pytest tests/e2e

synth: install  ## Synthesize CloudFormation into cdk.out (root and nested templates with their resource counts; layers bundled locally, cdk-nag and cfn-lint enforced)
	rm -rf cdk.out
	$(PY) -m infra.app
	$(VENV)/bin/cfn-lint

demo: install  ## Run the platform on the embedded local cloud (127.0.0.1) until Ctrl-C
	$(VENV)/bin/ecrm demo

demo-once: install  ## The scripted demo tour, then exit
	$(VENV)/bin/ecrm demo --once

bench: install  ## Benchmarks (tests/bench), each printed beside its reference
	$(PY) -m pytest tests/bench -s -p no:cacheprovider

schemas: install  ## Regenerate events/schemas from the pydantic event models
	$(VENV)/bin/ecrm schemas generate

openapi: install  ## Regenerate the whole API's OpenAPI document (functions/platform/openapi.json) from the engines' code
	$(PY) -m functions.api_document

pr: test synth  ## What a pull request must pass

clean:  ## Remove build output
	rm -rf cdk.out cdk.out.* .build .local-cloud .pytest_cache .mypy_cache .ruff_cache
