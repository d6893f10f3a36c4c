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

## The 3D picture renders off-screen through Mesa's EGL (or OSMesa): check by drawing a
## sphere; when neither works, install them (Debian, as root), then check again
setup: $(BIN)/ablasim
	@$(BIN)/python -m ablasim.viz.offscreen || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq; \
	    apt-get install -y -qq libgl1 libegl1 libegl-mesa0 || true; \
	    apt-get install -y -qq libosmesa6 || true; \
	    $(BIN)/python -m ablasim.viz.offscreen; \
	  else \
	    echo "3D pictures need Mesa's EGL or OSMesa: install libegl1 libegl-mesa0 (or libosmesa6) as root"; \
	    exit 1; \
	  fi; }

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
