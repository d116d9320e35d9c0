"""Probe throughput (questions per second) for each named budget, on the bundled SmolLM2-135M.

    python benchmarks/probe.py                          # 2 relations x 32 questions, 1 thread
    python benchmarks/probe.py --per-relation 64 --threads 2 --budgets lite gekhman

Each budget probes the same pool from scratch (a fresh output folder, no resumed chunks) and
reports wall time, questions per second, answers generated per second, and how long the
guess-evidence labelling (answer in question, exemplar copies, subject-blind controls) took on
top: the controls reuse the pool's own greedy answers, so they add no generation.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from factbench import knowledge, models
from factbench.engines.hf import HFEngine


class CountingEngine:
    """Counts the answers the probe asks for, to report answers per second."""

    def __init__(self, engine):
        self.engine, self.name, self.answers = engine, engine.name, 0

    def generate(self, prompts, params):
        self.answers += len(prompts) * params.n
        return self.engine.generate(prompts, params)

    def describe(self):
        return self.engine.describe()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--relations", nargs="+", default=["P17", "P36"])
    ap.add_argument("--per-relation", type=int, default=32)
    ap.add_argument("--budgets", nargs="+", default=list(knowledge.BUDGETS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    loaded = models.load(models.DEFAULT_MODEL)
    engine = HFEngine(loaded.model, loaded.tokenizer, dtype="float32", batch_size=args.batch_size, progress=False,
                      model_identity=loaded.identity)
    pool = knowledge.Pool(relations=tuple(args.relations), per_relation=args.per_relation)
    report = {"pool": f"{len(args.relations)} relations x {args.per_relation} questions ({', '.join(args.relations)})",
              "threads": args.threads, "batch_size": args.batch_size, "dtype": "float32", "budgets": {}}
    for name in args.budgets:
        settings = knowledge.ProbeSettings(budget=knowledge.BUDGETS[name])
        counting = CountingEngine(engine)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            out = knowledge.probe(counting, pool, settings, Path(tmp) / "profile")
            seconds = time.perf_counter() - start
            profile = knowledge.load_profile(out)
        # Guess-evidence cost: relabel the same answers, timing only the labelling step.
        greedy = {(r["id"], p): a for r in profile.rows for p, a in enumerate(r["greedy_answers"])}
        start = time.perf_counter()
        knowledge.label(pool.facts(), greedy, {}, settings)
        label_seconds = time.perf_counter() - start
        n = len(profile.rows)
        report["budgets"][name] = {
            "questions": n, "seconds": round(seconds, 1), "questions_per_second": round(n / seconds, 3),
            "answers_generated": counting.answers, "answers_per_second": round(counting.answers / seconds, 1),
            "guess_labelling_seconds": round(label_seconds, 2),
            "known": sum(r["known"] for r in profile.rows),
            "highly_known": sum(r["category"] == "HighlyKnown" for r in profile.rows),
        }
        print(name, report["budgets"][name], file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
