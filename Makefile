# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
OUT    ?= demo-output

.PHONY: demo test test-all lint bench setup compile clean

$(BIN)/ablasim: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(BIN)/ablasim

setup: $(BIN)/ablasim

## Compile the numba kernels ahead (once per machine; seconds when already done)
compile: setup
	$(BIN)/ablasim compile

## Set up, then run the built-in vertebra demo: simulation, report, pictures in $(OUT)/
demo: compile
	$(BIN)/ablasim run --example vertebra-demo --out $(OUT)

## Set up, then run the lint and the fast test suite
test: compile
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest

## The full suite, slow tests included
test-all: compile
	$(BIN)/python -m pytest -m "slow or not slow"

bench: setup
	$(BIN)/python benchmarks/bench_pennes.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
