# One command per chore. Everything runs from a project-local virtualenv that these
# targets create and keep in sync with pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run demo test lint format bench clean docs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/promocodes db upgrade
	$(BIN)/promocodes serve --host $(HOST) --port $(PORT)

# Fills an empty database with a lived-in example (refuses one that holds data).
demo: $(STAMP)
	$(BIN)/promocodes db upgrade
	$(BIN)/promocodes demo

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# The whole suite, on SQLite and on PostgreSQL (tests taking `db` run on both).
test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

# The CLI reference is rendered from the command tree; tests/docs fails when it is stale.
# The README's screenshots (a laptop's and a phone's width) are taken by the browser test
# (chromium needed), only here, so that a test run leaves the working tree as it found it.
docs: $(STAMP)
	$(BIN)/python -m promocodes.clidoc docs/cli.md
	PROMOCODES_DOCS_SCREENSHOT=1 $(BIN)/pytest -q tests/web/test_browser.py -k sqlite

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b --db sqlite || exit 1; \
	  $(BIN)/python $$b --db postgresql || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
