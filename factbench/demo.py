"""`factbench demo`: the whole loop, offline, on the bundled SmolLM2-135M-Instruct.

The loop grows as the pipeline does (probe -> split -> recipes -> score -> leaderboard). Today it
converts the bundled model (once, cached), asks it few-shot EntityQuestions dev questions
through the hf engine, and reports accuracy and speed.
"""

from __future__ import annotations

from pathlib import Path

from . import answering, data, models
from .engines import make_engine
from .files import write_json, write_jsonl


def run(questions: int = 200, out: Path = Path("runs/demo")) -> dict:
    print(f"[1/2] preparing the bundled model {models.DEFAULT_MODEL} (converted once, then cached)")
    engine = make_engine("hf", models.DEFAULT_MODEL)
    print(f"[2/2] answering {questions} EntityQuestions dev questions, 4-shot, greedy "
          f"({engine.describe()['dtype']} on {engine.describe()['device']})")
    facts = answering.pick_questions(data.load("dev"), questions, seed=0)
    result = answering.answer(engine, facts)
    summary = result.summary() | {"split": "dev", "engine": engine.describe()}
    write_jsonl(out / "answers.jsonl", result.records)
    write_json(out / "summary.json", summary)
    print(f"\n{summary['questions']} questions: exact match {summary['em']:.3f}, "
          f"containment {summary['contains']:.3f}, {summary['questions_per_second']} questions/s")
    for r in result.records[:5]:
        mark = "right" if r["em"] else "wrong"
        print(f"  {r['question']}  ->  {r['completion']!r}  ({mark}; gold {r['answers'][0]!r})")
    print(f"answers and summary in {out}/")
    return summary
