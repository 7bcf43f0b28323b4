# Two entry points (see README): `make run` and `make test`. Both create .venv on first use.
# torch is installed first, pinned to the CPU build, so pip never pulls multi-GB CUDA wheels on a
# CPU machine. On a GPU machine: make run TORCH_SPEC=torch   (or install your CUDA torch yourself).
# Everything else installs from the tested set, constraints.txt (CONSTRAINTS= to install without it).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
CONSTRAINTS ?= -c constraints.txt
SUITE ?= latency
BIN := $(VENV)/bin
# What `make test-latest` runs in a venv resolved without constraints: the engines against transformers,
# and the end-to-end runs (the tests a dependency move breaks first).
LATEST_VENV ?= .venv-latest
LATEST_TESTS ?= tests/test_engine_parity.py tests/test_compat.py tests/test_run_end_to_end.py

.PHONY: run test setup clean chromium test-latest

$(BIN)/dgbench: pyproject.toml constraints.txt
	@start=$$(date +%s); \
	$(PYTHON) -m venv $(VENV) && \
	$(BIN)/pip install --quiet --disable-pip-version-check $(TORCH_SPEC) && \
	$(BIN)/pip install --quiet --disable-pip-version-check $(CONSTRAINTS) -e ".[test]" && \
	touch $@ && echo "setup: $(VENV) ready in $$(( $$(date +%s) - start )) s"

setup: $(BIN)/dgbench

run: setup
	$(BIN)/dgbench run --suite $(SUITE)

# The report tests load pages in headless Chromium (Debian's `chromium`): installed here when running as
# root, otherwise `make test` stops with the command to run.
CHROMIUM ?= /usr/bin/chromium

chromium:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium (report tests)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; \
	else \
		echo "make test: $(CHROMIUM) not found; the report tests need it: sudo apt-get install -y chromium" >&2; \
		exit 1; \
	fi

test: setup chromium
	$(BIN)/pytest -q

# What pip would pick today: a second venv without constraints.txt, the versions it resolved, and the
# tests that a dependency move breaks first. Not part of `make test` (time); the scheduled workflow runs it.
test-latest:
	rm -rf $(LATEST_VENV)
	$(MAKE) --no-print-directory setup VENV=$(LATEST_VENV) CONSTRAINTS=
	@echo "test-latest resolved:"; $(LATEST_VENV)/bin/pip list --disable-pip-version-check 2>/dev/null | \
		grep -iE '^(torch|transformers|tokenizers|huggingface[-_]hub|safetensors|accelerate|lm[-_]eval|numpy|datasets|pandas) '
	DGBENCH_UNTESTED_SET=1 $(LATEST_VENV)/bin/pytest -q $(LATEST_TESTS)

clean:
	rm -rf $(VENV) $(LATEST_VENV) results
