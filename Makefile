# The two commands of the README: `make demo` (main job) and `make test` (all tests).
# Both set up the virtual environment first; nothing needs installing by hand. `make demo`
# installs the package alone (what the demo runs); the test and lint tools come with the
# targets that use them (`make test`, `make lint`, `make bench`).
PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev

.PHONY: setup setup-runtime demo sample test lint bench bench-quick bench-peer clean clean-databases

$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME)

$(DEV): $(RUNTIME) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV)

setup-runtime: $(RUNTIME)
setup: $(DEV)

# Main job: live traffic, the engine and the dashboard on http://127.0.0.1:$(PORT) (Ctrl-C
# stops). `make demo PORT=8765` when port 8000 is taken.
demo: $(RUNTIME)
	$(BIN)/coffeeshop demo --port $(PORT)

# The bundled sample synced into a database of its own (sample.db), the tables printed.
sample: $(RUNTIME)
	$(BIN)/coffeeshop sample

lint: $(DEV)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

# The suite over TEST_WORKERS parallel processes (pytest-xdist); each test file runs whole in
# one worker (`--dist loadfile`: a module's server or Prefect API starts once, and its tests
# keep their order). More workers than the 2 cores pay: most tests wait on subprocesses and
# servers. `make test TEST_WORKERS=0` runs it in this one process. The schemathesis module
# runs after, in one process of its own: its generated cases share one test id per function,
# which xdist cannot hand out (under it they ran no request, and its last test says so).
TEST_WORKERS ?= 4
SERIAL_TESTS := tests/test_api_schema.py
test: $(DEV) lint
	bash scripts/ensure-mariadb.sh
	bash scripts/ensure-chromium.sh
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(addprefix --ignore=,$(SERIAL_TESTS))
	$(BIN)/pytest $(SERIAL_TESTS)

bench: $(DEV)
	bash scripts/ensure-mariadb.sh
	$(BIN)/python bench/bench_sync.py

bench-quick: $(DEV)
	bash scripts/ensure-mariadb.sh
	$(BIN)/python bench/bench_sync.py --receipts 100000

# coffeeshop against our Pathway pipeline of the same four tables, same feed (docs/benchmarks.md).
# Installs Pathway in bench/.peer-venv, never in .venv. `make bench-peer PEER_ARGS="--busy 2"`.
PEER_ARGS ?= --receipts 300000 --rounds 2
bench-peer: $(DEV)
	bash scripts/ensure-mariadb.sh
	$(BIN)/python bench/bench_peer.py $(PEER_ARGS)

# Removes what `make` built (the virtualenv, generated benchmark data); never a database.
clean:
	rm -rf $(VENV) bench/data bench/.peer-venv

# The databases the README's commands create here, with the files beside each (WAL, shared
# memory, the writer's signal file), named before they go. Your analysis database is data:
# this target exists so removing it is a deliberate, separate step.
DATABASES := $(foreach db,analysis.db sample.db,$(db) $(db)-wal $(db)-shm $(db)-signal)
clean-databases:
	@for f in $(DATABASES); do if [ -e "$$f" ]; then echo "removing $$f"; rm -f "$$f"; fi; done
