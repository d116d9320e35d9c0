"""Ask a model EntityQuestions questions with few-shot prompts and grade the answers."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from . import data, matching, models, prompts, sample_logs
from .data import Fact
from .engines.base import Engine, GenerationParams  # the interface, for type hints
from .errors import FactbenchError
from .protocol import generation_params


def pick_questions(facts: list[Fact], limit: int | None, seed: int = 0) -> list[Fact]:
    """A deterministic sample of `limit` facts (all when limit is None), in id order."""
    if limit is not None and limit < 1:
        raise FactbenchError(f"--limit must be at least 1, got {limit}")
    if not facts:
        raise FactbenchError("no questions selected")
    if limit is None or limit >= len(facts):
        return list(facts)
    chosen = set(random.Random(seed).sample(range(len(facts)), limit))
    return [f for i, f in enumerate(facts) if i in chosen]


@dataclass
class AnsweredRun:
    records: list[dict]
    seconds: float

    def summary(self) -> dict:
        n = len(self.records)
        return {
            "questions": n,
            "em": sum(r["em"] for r in self.records) / n,
            "contains": sum(r["contains"] for r in self.records) / n,
            "seconds": round(self.seconds, 2),
            "questions_per_second": round(n / self.seconds, 2) if self.seconds else None,
        }


def answer(engine: Engine, facts: list[Fact], *, params: GenerationParams | None = None,
           prompt_index: int = 0, exemplar_seed: int = prompts.DEFAULT_EXEMPLAR_SEED,
           shots: int = prompts.DEFAULT_SHOTS) -> AnsweredRun:
    """Greedy answers (by default) with both scores for every fact."""
    params = params or generation_params()
    texts = [prompts.build_prompt(f, prompt_index, exemplar_seed, shots) for f in facts]
    start = time.perf_counter()
    completions = engine.generate(texts, params)
    seconds = time.perf_counter() - start
    records = [
        {
            "id": f.id,
            "relation": f.relation,
            "question": f.question,
            "answers": list(f.answers),
            "prompt_index": prompt_index,
            "completion": c[0],
            "em": matching.exact_match(c[0], f.answers),
            "contains": matching.contains(c[0], f.answers),
        }
        for f, c in zip(facts, completions)
    ]
    return AnsweredRun(records, seconds)


def evaluate(model: str, *, split: str = "dev", relations: list[str] | None = None, limit: int | None = None,
             seed: int = 0, out: Path | None = None, engine: str = "hf", revision: str | None = None,
             dtype: str = "auto", batch_size: int | None = None) -> dict:
    """`factbench eval`: answer a seeded sample of one split's questions with factbench's own engine.

    Validates the questions and `out` before a model is loaded. Writes `samples.jsonl` (one graded
    answer a question) and `summary.json` into `out` when given, together (one model's one run: see
    `sample_logs.write_folder`); returns the summary (questions, EM, containment, speed, the split
    and the engine's description).
    """
    from .engines import make_engine

    facts = pick_questions(data.load(data.check_split(split), relations), limit, seed)
    sample_logs.check_out_folder(out, models.resolve(model, revision) if out else None)
    runner = make_engine(engine, model, revision=revision, dtype=dtype, batch_size=batch_size)
    run = answer(runner, facts)
    summary = run.summary() | {"split": split, "engine": runner.describe()}
    if out:
        summary = sample_logs.write_folder(out, {"samples.jsonl": run.records}, summary)
    return summary
