# The two commands of the README: `make demo` (main job) and `make test` (all tests).
# Both set up the virtual environment first; nothing needs installing by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo sample test lint bench bench-quick clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Main job: live traffic, the engine and the dashboard on http://127.0.0.1:8000 (Ctrl-C stops).
demo: setup
	$(BIN)/coffeeshop demo

# The bundled sample synced into SQLite, the tables printed.
sample: setup
	$(BIN)/coffeeshop sample --db sqlite:///analysis.db

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

test: setup lint
	bash scripts/ensure-mariadb.sh
	bash scripts/ensure-chromium.sh
	$(BIN)/pytest

bench: setup
	bash scripts/ensure-mariadb.sh
	$(BIN)/python bench/bench_sync.py

bench-quick: setup
	bash scripts/ensure-mariadb.sh
	$(BIN)/python bench/bench_sync.py --receipts 100000

clean:
	rm -rf $(VENV) analysis.db analysis.db-wal analysis.db-shm bench/data
