# The two commands of the README, and the benchmark. Each first runs deploy/bootstrap.sh, which
# installs the system packages its purpose needs (deploy/system-packages.txt) and .venv.
BIN := .venv/bin

.PHONY: demo test bench lint stack-up stack-down clean

## make demo: start the local stack, a worker, publish orders, show the emails and analytics
demo:
	@deploy/bootstrap.sh demo
	$(BIN)/flowmail demo

## make test: lint, unit tests and integration tests against the real local stack
test:
	@deploy/bootstrap.sh test
	$(BIN)/ruff check .
	$(BIN)/pytest

## make bench [BENCH_ARGS="--n 20000 --provider smtp --json out.json"]: the end-to-end benchmark
bench:
	@deploy/bootstrap.sh bench
	$(BIN)/flowmail bench $(BENCH_ARGS)

lint:
	@deploy/bootstrap.sh test
	$(BIN)/ruff check .

stack-up:
	@deploy/bootstrap.sh demo
	$(BIN)/flowmail stack up

stack-down:
	@test ! -x $(BIN)/flowmail || $(BIN)/flowmail stack down

clean: stack-down
	rm -rf .flowmail
