"""The one small interface every generation engine implements: prompts in, completions out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from ..errors import FactbenchError


@dataclass(frozen=True)
class GenerationParams:
    """How to decode.

    temperature == 0 means greedy (then `n` must be 1 and `top_k` is ignored). Sampling is
    seeded per prompt and per sample from `seed` and the prompt text, so the same prompt gets
    the same samples whatever batch or order it arrives in (which is what makes a resumed
    probe identical to an uninterrupted one).
    """

    max_new_tokens: int = 16
    temperature: float = 0.0
    top_k: int = 0  # 0 = no top-k filter
    n: int = 1
    stop: tuple[str, ...] = ("\n",)
    seed: int = 0

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise FactbenchError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise FactbenchError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise FactbenchError(f"top_k must be >= 0, got {self.top_k}")
        if self.n < 1:
            raise FactbenchError(f"n must be at least 1, got {self.n}")
        if self.greedy and self.n != 1:
            raise FactbenchError("greedy decoding (temperature 0) gives one completion; use n=1")
        object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def describe(self) -> dict:
        return asdict(self) | {"stop": list(self.stop)}


class Engine(Protocol):
    name: str

    def generate(self, prompts: Sequence[str], params: GenerationParams) -> list[list[str]]:
        """`params.n` completions per prompt, each cut at the first stop string and stripped."""
        ...

    def describe(self) -> dict:
        """What produced the completions: engine, model identity, dtype, versions (for protocol hashes)."""
        ...


def check_prompts(prompts: Sequence[str]) -> list[str]:
    prompts = list(prompts)
    if not prompts:
        raise FactbenchError("no prompts to generate from (empty question list)")
    return prompts
