"""Generation engines behind one interface (see base.py): `hf` (transformers, CPU or GPU) and
`vllm` (GPU, optional extra).

The two ways to get one: `make_engine(name, spec)` for a model spec (loaded through
`factbench.models.load`, the one loader), and `engine_for(model, tokenizer)` for a model already in
memory (one being trained, a just-built toy world). Nothing else constructs an engine.
"""

from __future__ import annotations

from ..errors import FactbenchError
from .base import Engine, GenerationParams

ENGINES = ("hf", "vllm")

__all__ = ["ENGINES", "Engine", "GenerationParams", "engine_for", "make_engine"]


def make_engine(name: str, model: str, *, revision: str | None = None, dtype: str = "auto",
                batch_size: int | None = None, progress: bool = True) -> Engine:
    """An engine for a model spec (see factbench.models)."""
    from .. import models

    if name == "hf":
        loaded = models.load(model, revision)
        return engine_for(loaded.model, loaded.tokenizer, identity=loaded.identity, dtype=dtype,
                          batch_size=batch_size, progress=progress)
    if name == "vllm":
        from .vllm import VLLMEngine

        path, identity = models.model_folder(model, revision)
        engine = VLLMEngine(path, dtype=dtype, **({"revision": revision} if revision else {}))
        engine.model_identity = identity
        return engine
    raise FactbenchError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


def engine_for(model, tokenizer, *, identity: dict | None = None, dtype: str = "auto", batch_size: int | None = None,
               device: str | None = None, progress: bool = False) -> Engine:
    """The hf engine over a model already in memory (moved to `device` and cast to `dtype`)."""
    from .hf import DEFAULT_BATCH_SIZE, HFEngine

    return HFEngine(model, tokenizer, batch_size=batch_size or DEFAULT_BATCH_SIZE, dtype=dtype, device=device,
                    progress=progress, model_identity=identity)
