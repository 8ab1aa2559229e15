# Two commands (README): `make demo` sets up .venv and runs the embedded-default pipeline;
# `make test` sets up .venv and runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test gpu-check clean

setup: $(STAMP)

# pyproject.toml is the one list of what is installed (torch 2.13 included), resolved by pip in one step; then,
# last, the packages whose declared requirements are wrong for this stack (requirements-nodeps.txt says why).
# --no-warn-conflicts: pip would otherwise print its red dependency-resolver message about those packages (on
# a second run also in the first step); tests/test_packaging.py checks the environment's consistency instead.
$(STAMP): pyproject.toml requirements-nodeps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-warn-conflicts -e ".[test,study,gpu]"
	$(BIN)/pip install --quiet --no-deps --no-warn-conflicts --ignore-requires-python -r requirements-nodeps.txt
	touch $(STAMP)

demo: setup
	$(BIN)/neurodeploy demo

test: setup
	$(BIN)/ruff check neurodeploy tests
	$(BIN)/python -m pytest -q

# on a machine with a CUDA GPU: GPU tests + a short measured job -> docs/gpu/ (docs/gpu.md; exit 2 without CUDA)
gpu-check: setup
	$(BIN)/python scripts/gpu_check.py

clean:
	rm -rf $(VENV) runs .pytest_cache
