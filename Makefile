.DEFAULT_GOAL := help
PY := .venv/bin/python

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

.venv: pyproject.toml
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[test,bench]' && touch .venv

install: .venv ## Create the virtualenv with test and benchmark extras

test: .venv ## Run the whole test suite on 2 cores
	$(PY) -m pytest -n 2

lint: .venv ## ruff (lint and format check) and mypy (strict on store/, plain on workbench/)
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

format: .venv ## Format the code
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

demo: .venv ## Build demo.db and open the workbench
	.venv/bin/sss demo

bench: .venv ## Run the benchmarks (prints ratios against peers)
	$(PY) benchmarks/store_bench.py

.PHONY: help install test lint format demo bench
