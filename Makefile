# Everyday verbs. `make run` and `make test` are the whole story for a newcomer.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
API_PORT ?= 8000
UI_PORT  ?= 8501
ADMIN_UI_PORT ?= 8502
DEMO_ADMIN ?= admin
DEMO_ADMIN_PASSWORD_FILE := $${DATA_DIR:-data}/demo-admin-password
# Two pytest-xdist workers: the suite takes ~5 min instead of ~8.5 on this 2-core machine
# (every test has its own database, Redis prefix and ports). `make test PYTEST_ARGS=` runs
# it in one process.
PYTEST_ARGS ?= -n 2
# The chat page's look; tests/ui/test_browser.py passes the same flags.
STREAMLIT_FLAGS := --client.toolbarMode minimal --theme.primaryColor '\#0f766e'

.PHONY: install run seed index demo-admin serve test lint format bench services chromium clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)

seed: install
	$(BIN)/shopwise seed

# Install, migrate and seed, then serve the API on the embedded defaults
# (SQLite under ./data, in-process cache, template explanations: no key, no network)
# in the background, and the chat UI at http://127.0.0.1:$(UI_PORT); Ctrl-C stops both.
index: seed
	$(BIN)/shopwise index
	$(BIN)/shopwise segments

# The operator console needs a login even on the open loopback demo: on the first run, create
# the admin $(DEMO_ADMIN) with a random password kept (mode 0600) in the file below.
demo-admin: seed
	@f=$(DEMO_ADMIN_PASSWORD_FILE); test -s $$f || { umask 077; \
	  pw=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(15))'); \
	  if SHOPWISE_ADMIN_PASSWORD=$$pw $(BIN)/shopwise admins create --username $(DEMO_ADMIN) \
	    --role admin >/dev/null 2>&1; then echo "$$pw" > $$f; \
	  else echo "admin '$(DEMO_ADMIN)' exists already: the dashboard takes its own password"; fi; }

# ... and the operator console at http://127.0.0.1:$(ADMIN_UI_PORT) (admin login).
run: index demo-admin
	@$(BIN)/shopwise serve --port $(API_PORT) & api=$$!; \
	SHOPWISE_API_URL=http://127.0.0.1:$(API_PORT) $(BIN)/streamlit run chat_ui/admin.py \
	  --server.headless true --server.port $(ADMIN_UI_PORT) --server.address 127.0.0.1 \
	  --browser.gatherUsageStats false $(STREAMLIT_FLAGS) >/dev/null & admin=$$!; \
	trap 'kill $$api $$admin 2>/dev/null; wait $$api $$admin 2>/dev/null' EXIT INT TERM; \
	echo "API http://127.0.0.1:$(API_PORT)  ·  chat UI http://127.0.0.1:$(UI_PORT)"; \
	echo "admin dashboard http://127.0.0.1:$(ADMIN_UI_PORT)  (user $(DEMO_ADMIN), password in $(DEMO_ADMIN_PASSWORD_FILE))"; \
	SHOPWISE_API_URL=http://127.0.0.1:$(API_PORT) $(BIN)/streamlit run chat_ui/app.py \
	  --server.headless true --server.port $(UI_PORT) --server.address 127.0.0.1 \
	  --browser.gatherUsageStats false $(STREAMLIT_FLAGS)

services:
	@bash scripts/ensure-services.sh

chromium:
	@bash scripts/ensure-chromium.sh

test: install services chromium
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5): nothing to run" >&2; rc=0; fi; \
	exit $$rc

lint: install
	$(BIN)/ruff check backend tests bench seed_data chat_ui
	$(BIN)/ruff format --check backend tests bench seed_data chat_ui
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix backend tests bench seed_data chat_ui
	$(BIN)/ruff format backend tests bench seed_data chat_ui

bench: install
	$(BIN)/python -m bench.engine_bench
	$(BIN)/python -m bench.retrieval_bench $(RETRIEVAL_BENCH_ARGS)
	$(BIN)/python -m bench.chat_bench
	$(BIN)/python -m bench.llm_overhead_bench
	$(BIN)/python -m bench.experiments_bench
	$(BIN)/python -m bench.load_bench --duration 30 --reflect-samples 100

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
