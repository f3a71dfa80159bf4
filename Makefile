# nin-search developer commands. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint clean

# The venv is re-created only when missing; the editable install re-runs only when
# pyproject.toml changed since the last install (the stamp file records that).
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --upgrade-strategy only-if-needed -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# One worker: the answer EVIDENCE.md records, reproducible to the digit (the CLI's default, one
# worker per core, is faster on a busy machine but not reproducible run to run).
run: install
	$(BIN)/nin-search optimize --workers 1

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check nin_search tests benchmarks contrib
	$(BIN)/ruff format --check nin_search tests benchmarks contrib
	$(BIN)/deptry .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
