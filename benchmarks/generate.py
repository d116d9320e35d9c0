"""hf engine vs the naive loop on the same EntityQuestions dev questions.

    python benchmarks/generate.py                       # 500 questions, 3 runs each, 2 threads
    python benchmarks/generate.py --questions 100 --runs 1 --threads 1

The naive loop is one greedy `model.generate` per prompt, no batching, no prefix reuse
(`factbench.engines.hf.reference_generate`). Both run the bundled SmolLM2-135M-Instruct in fp32,
and the engine's answers must equal the naive loop's exactly, or the script fails. The engine is
also timed in bf16, with its agreement with fp32 answers reported (not assumed). Prints one JSON
object: medians, all run times, the speed ratio, accuracy.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import torch

from factbench import asking, data, matching, models, prompts
from factbench.engines.base import GenerationParams
from factbench.engines.hf import HFEngine, cpu_has_amx, reference_generate


def timed(fn, runs):
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--naive-runs", type=int, help="runs of the naive loop (default: --runs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    facts = asking.pick_questions(data.load("dev"), args.questions, seed=0)
    texts = [prompts.build_prompt(f) for f in facts]
    params = GenerationParams()
    loaded = models.load(models.DEFAULT_MODEL)
    fp32 = HFEngine(loaded.model, loaded.tokenizer, dtype="float32", batch_size=args.batch_size, progress=False)
    fp32.generate(texts[:4], params)  # warm-up (stop-token table, allocator)

    engine_out, engine_times = timed(lambda: [c[0] for c in fp32.generate(texts, params)], args.runs)
    naive_out, naive_times = timed(lambda: reference_generate(fp32.model, loaded.tokenizer, texts, params),
                                   args.naive_runs or args.runs)
    mismatches = [(t, a, b) for t, a, b in zip(texts, engine_out, naive_out) if a != b]

    bf16 = HFEngine(models.load(models.DEFAULT_MODEL).model, loaded.tokenizer, dtype="bfloat16",
                    batch_size=args.batch_size, progress=False)
    bf16.generate(texts[:4], params)
    bf16_out, bf16_times = timed(lambda: [c[0] for c in bf16.generate(texts, params)], args.runs)

    def accuracy(outs):
        return {"em": sum(matching.exact_match(o, f.answers) for o, f in zip(outs, facts)) / len(facts),
                "contains": sum(matching.contains(o, f.answers) for o, f in zip(outs, facts)) / len(facts)}

    med = statistics.median
    report = {
        "questions": len(facts),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
                   f"AMX: {cpu_has_amx()}",
        "naive_fp32_seconds": {"median": round(med(naive_times), 2), "runs": [round(t, 2) for t in naive_times]},
        "engine_fp32_seconds": {"median": round(med(engine_times), 2), "runs": [round(t, 2) for t in engine_times]},
        "engine_bf16_seconds": {"median": round(med(bf16_times), 2), "runs": [round(t, 2) for t in bf16_times]},
        "speedup_fp32_vs_naive": round(med(naive_times) / med(engine_times), 2),
        "speedup_bf16_vs_naive": round(med(naive_times) / med(bf16_times), 2),
        "engine_fp32_questions_per_second": round(len(facts) / med(engine_times), 2),
        "identical_greedy_answers": not mismatches,
        "bf16_agreement_with_fp32": sum(a == b for a, b in zip(bf16_out, engine_out)) / len(facts),
        "accuracy_fp32": accuracy(engine_out),
        "accuracy_bf16": accuracy(bf16_out),
    }
    print(json.dumps(report, indent=2))
    if mismatches:
        print(f"FAIL: {len(mismatches)} answers differ from the naive loop, e.g. {mismatches[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
