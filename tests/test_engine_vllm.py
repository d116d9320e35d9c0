"""The vLLM engine's own code: install error, request building, result parsing.

These run on CPU without vLLM and test our code around vLLM for real. The vLLM call itself
(loading a model, `LLM.generate`, seeded sampling) is checked by `make vllm-check`
(benchmarks/vllm_check.py) in its own venv: vLLM's CPU backend here, results in BENCHMARKS.md.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field

import pytest

from factbench.engines.base import GenerationParams
from factbench.engines.vllm import VLLMEngine, default_memory_share, parse_outputs, request_seed, sampling_kwargs
from factbench.errors import FactbenchError


def _assert_install_error(excinfo):
    message = str(excinfo.value)
    assert "factbench[vllm]" in message
    assert "\n" not in message


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_engine_without_vllm_names_the_extra():
    with pytest.raises(FactbenchError) as excinfo:
        VLLMEngine("some/model")
    _assert_install_error(excinfo)


def test_engine_without_vllm_names_the_extra_even_where_vllm_is_installed(monkeypatch):
    # A None entry in sys.modules makes `import vllm` fail as if it were not installed,
    # so GPU machines run this check too.
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(FactbenchError) as excinfo:
        VLLMEngine("some/model")
    _assert_install_error(excinfo)


def test_sampling_kwargs_greedy():
    params = GenerationParams(max_new_tokens=24, stop=("\n", "Q:"))
    assert sampling_kwargs(params, "Q: Where was X born?\nA:") == {
        "n": 1,
        "temperature": 0.0,
        "max_tokens": 24,
        "stop": ["\n", "Q:"],
    }


def test_sampling_kwargs_sampled():
    params = GenerationParams(temperature=0.5, top_k=40, n=16, seed=3)
    prompt = "Q: Where was X born?\nA:"
    assert sampling_kwargs(params, prompt) == {
        "n": 16,
        "temperature": 0.5,
        "max_tokens": 16,
        "stop": ["\n"],
        "top_k": 40,
        "seed": request_seed(3, prompt),
    }


def test_sampling_kwargs_no_top_k_uses_vllms_disabled_value():
    params = GenerationParams(temperature=1.0, top_k=0, n=4)
    assert sampling_kwargs(params, "p")["top_k"] == 0  # vLLM >= 0.9
    assert sampling_kwargs(params, "p", top_k_off=-1)["top_k"] == -1  # older vLLM


def test_request_seed_is_stable_and_31_bit():
    seed = request_seed(0, "Q: Where was X born?\nA:")
    assert seed == request_seed(0, "Q: Where was X born?\nA:")
    assert 0 <= seed <= 2**31 - 1
    # Pinned so that a change of derivation, which would silently change every sampled
    # profile, fails here first.
    assert seed == 1606112611


def test_request_seed_differs_across_prompts_and_seeds():
    seeds = {request_seed(s, p) for s in range(3) for p in ("a", "b", "ab", "")}
    assert len(seeds) == 12
    assert all(0 <= s < 2**31 for s in seeds)


# Stand-ins with the field names of vLLM's `vllm.outputs.RequestOutput` (`outputs`) and
# `CompletionOutput` (`index`, `text`); parse_outputs reads nothing else.
@dataclass
class CompletionOutput:
    index: int
    text: str


@dataclass
class RequestOutput:
    outputs: list[CompletionOutput] = field(default_factory=list)


def _request(*texts: str) -> RequestOutput:
    return RequestOutput([CompletionOutput(i, t) for i, t in enumerate(texts)])


def test_parse_outputs_keeps_request_order_and_cuts_at_stop():
    outputs = [_request(" Paris\nQ: next", " Lyon"), _request(" Warsaw Q: x", "Kraków\n")]
    assert parse_outputs(outputs, n=2, stop=("\n", "Q:")) == [["Paris", "Lyon"], ["Warsaw", "Kraków"]]


def test_parse_outputs_orders_samples_by_index():
    out = RequestOutput([CompletionOutput(1, "second"), CompletionOutput(0, "first")])
    assert parse_outputs([out], n=2, stop=("\n",)) == [["first", "second"]]


def test_parse_outputs_rejects_wrong_number_of_completions():
    with pytest.raises(FactbenchError, match="1 completions for prompt 1, expected 2"):
        parse_outputs([_request("a", "b"), _request("c")], n=2, stop=("\n",))


def test_memory_share_default_fits_the_backend():
    # vLLM's CPU backend reads gpu_memory_utilization as a share of system RAM and refused 0.9.
    assert default_memory_share("cpu") == 0.2
    assert default_memory_share("cuda") == 0.9
