# Wipsie: `make run` starts the platform locally, `make test` runs the suite.
# Both set up .venv first (idempotent: only reinstalls when requirements change).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench screenshots setup clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Wipsie needs Python 3.11 or newer"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/run_platform.py

# Three test processes (pytest-xdist): most of the suite's time is waiting (outages, visibility
# timeouts, worker start-ups), which overlaps well on 2 cores. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 3

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The README's admin screenshots (docs/*.png), taken again by the browser tests; other runs of
# the suite write them to a temporary directory and leave docs/ alone.
screenshots: $(STAMP)
	UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -n 0 $(PYTEST_ARGS) \
		tests/browser/test_admin_in_a_browser.py tests/browser/test_polls_and_layout_in_a_browser.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .run db.sqlite3* .test-db.sqlite3*
