# Two entry points (see README): `make run` and `make test`. Both create .venv on first use.
# torch is installed first, pinned to the CPU build, so pip never pulls multi-GB CUDA wheels on a
# CPU machine. On a GPU machine: make run TORCH_SPEC=torch   (or install your CUDA torch yourself).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
SUITE ?= latency
BIN := $(VENV)/bin

.PHONY: run test setup clean chromium

$(BIN)/dgbench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[test]"
	@touch $@

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

clean:
	rm -rf $(VENV) results
