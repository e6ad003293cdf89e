# The two commands of the README. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint stack-up stack-down clean

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

## make bench [BENCH_ARGS="--n 20000 --provider smtp --json out.json"]: the end-to-end benchmark
bench: $(STAMP)
	@test -x /usr/sbin/smtp-sink || { echo "installing postfix (smtp-sink, smtp-source)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix; }
	$(BIN)/flowmail bench $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

stack-up: $(STAMP)
	$(BIN)/flowmail stack up

stack-down: $(STAMP)
	$(BIN)/flowmail stack down

clean: stack-down
	rm -rf .flowmail
