# Everyday verbs. `make run` and `make test` are the whole story for a newcomer.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
API_PORT ?= 8000

.PHONY: install run seed serve test lint format bench services clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)

seed: install
	$(BIN)/shopwise seed

# Install, migrate and seed, then serve the API on the embedded defaults
# (SQLite under ./data, in-process cache, template explanations: no key, no network).
run: seed
	$(BIN)/shopwise serve --port $(API_PORT)

services:
	@bash scripts/ensure-services.sh

test: install services
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5): nothing to run" >&2; rc=0; fi; \
	exit $$rc

lint: install
	$(BIN)/ruff check backend tests bench seed_data
	$(BIN)/ruff format --check backend tests bench seed_data
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix backend tests bench seed_data
	$(BIN)/ruff format backend tests bench seed_data

bench: install
	$(BIN)/python -m bench.engine_bench

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
