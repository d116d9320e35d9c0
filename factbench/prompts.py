"""Few-shot question-answering prompts.

A prompt is `k` exemplars from the **dev** split of the question's own relation, then the
question, in the same `Q: ...\nA: ...` shape the training recipes use:

    Q: Which country is Ojców located in?
    A: Poland
    Q: ...
    A: ...
    Q: Which country is Kraków located in?
    A:

Exemplars are drawn deterministically from (seed, relation, prompt index), so every question
of a relation under the same prompt index shares one prefix, which the engines encode once.
A question is never its own exemplar.
"""

from __future__ import annotations

import random
from functools import lru_cache

from . import data
from .data import Fact

PROMPT_VERSION = "qa-kshot-1"
DEFAULT_SHOTS = 4
DEFAULT_EXEMPLAR_SEED = 0


def format_example(question: str, answer: str) -> str:
    """One training / exemplar example, without a trailing newline."""
    return f"Q: {question}\nA: {answer}"


@lru_cache(maxsize=4096)
def _exemplar_candidates(relation: str, prompt_index: int, seed: int, k: int) -> tuple[Fact, ...]:
    pool = data.load("dev", [relation])
    rng = random.Random(f"{seed}/{relation}/{prompt_index}")
    # k + 1 so that a dev question can skip itself and still get k exemplars.
    return tuple(rng.sample(pool, min(k + 1, len(pool))))


def exemplars(fact: Fact, prompt_index: int = 0, seed: int = DEFAULT_EXEMPLAR_SEED, k: int = DEFAULT_SHOTS) -> list[Fact]:
    cands = [e for e in _exemplar_candidates(fact.relation, prompt_index, seed, k) if e.question != fact.question]
    return cands[:k]


def build_prompt(fact: Fact, prompt_index: int = 0, seed: int = DEFAULT_EXEMPLAR_SEED, k: int = DEFAULT_SHOTS) -> str:
    shots = [format_example(e.question, e.answers[0]) for e in exemplars(fact, prompt_index, seed, k)]
    return "\n".join([*shots, f"Q: {fact.question}\nA:"])
