# The two commands of the README. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint stack-up stack-down clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

## make demo: start the local stack, a worker, publish orders, show the emails and analytics
demo: $(STAMP)
	$(BIN)/flowmail demo

## make test: lint, unit tests and integration tests against the real local stack
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .

stack-up: $(STAMP)
	$(BIN)/flowmail stack up

stack-down: $(STAMP)
	$(BIN)/flowmail stack down

clean: stack-down
	rm -rf .flowmail
