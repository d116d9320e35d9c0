"""Generation engines behind one interface (see base.py): `hf` (transformers, CPU or GPU) and
`vllm` (GPU, optional extra)."""

from __future__ import annotations

from ..errors import FactbenchError
from .base import Engine, GenerationParams

ENGINES = ("hf", "vllm")

__all__ = ["ENGINES", "Engine", "GenerationParams", "make_engine"]


def make_engine(name: str, model: str, *, revision: str | None = None, dtype: str = "auto",
                batch_size: int | None = None, progress: bool = True) -> Engine:
    """An engine for a model spec (see factbench.models)."""
    from .. import models

    if name == "hf":
        from .hf import DEFAULT_BATCH_SIZE, HFEngine

        loaded = models.load(model, revision)
        return HFEngine(loaded.model, loaded.tokenizer, batch_size=batch_size or DEFAULT_BATCH_SIZE,
                        dtype=dtype, progress=progress, model_identity=loaded.identity)
    if name == "vllm":
        from .vllm import VLLMEngine

        path, identity = models.model_folder(model, revision)
        engine = VLLMEngine(path, dtype=dtype, **({"revision": revision} if revision else {}))
        engine.model_identity = identity
        return engine
    raise FactbenchError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
