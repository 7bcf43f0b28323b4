# Two entry points (see README): `make run` and `make test`. Both create .venv on first use.
# torch is installed first, pinned to the CPU build, so pip never pulls multi-GB CUDA wheels on a
# CPU machine. On a GPU machine: make run TORCH_SPEC=torch   (or install your CUDA torch yourself).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
SUITE ?= latency
BIN := $(VENV)/bin

.PHONY: run test setup clean

$(BIN)/dgbench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[test]"
	@touch $@

setup: $(BIN)/dgbench

run: setup
	$(BIN)/dgbench run --suite $(SUITE)

test: setup
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) results
