"""Check the vLLM engine on a GPU: speed, accuracy, and reproducible sampling.

CI has no GPU, so this is where `VLLMEngine` meets a real `vllm.LLM`. It runs greedy 4-shot
prompts for N EntityQuestions dev questions (questions/second, exact match, containment), then
samples n=16 completions for a few prompts three times: twice in the same batch (do the
per-request seeds reproduce?) and once in another batch (reversed, half the prompts: is a
prompt's sample independent of its batch, as a resumed probe needs?). Prints one JSON object.

    python benchmarks/vllm_check.py --model /path/to/model-folder --questions 1000
    VLLM_BATCH_INVARIANT=1 python benchmarks/vllm_check.py --model /path/to/model-folder
"""

from __future__ import annotations

import argparse
import json
import random
import time

from factbench import data
from factbench.engines.base import GenerationParams
from factbench.engines.vllm import VLLMEngine
from factbench.errors import FactbenchError
from factbench.matching import contains, exact_match
from factbench.prompts import build_prompt


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = p.add_argument_group("model")
    model.add_argument("--model", required=True, help="local model folder (or hub id where the machine has internet)")
    model.add_argument("--dtype", default="auto", help="vLLM dtype (default: auto)")
    model.add_argument("--max-model-len", type=int, default=2048, help="context length to reserve KV cache for")
    model.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    work = p.add_argument_group("work")
    work.add_argument("--questions", type=int, default=500, help="dev questions for the greedy run (default: 500)")
    work.add_argument("--sampled-prompts", type=int, default=8, help="prompts for the sampled runs (default: 8)")
    work.add_argument("--seed", type=int, default=0, help="question sample and sampling seed")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    facts = data.load("dev")
    # A random sample rather than the first N, which would all be one relation.
    facts = random.Random(args.seed).sample(facts, min(args.questions, len(facts)))
    prompts = [build_prompt(f) for f in facts]

    start = time.perf_counter()
    try:
        engine = VLLMEngine(
            args.model,
            dtype=args.dtype,
            seed=args.seed,
            gpu_memory_utilization=args.gpu_memory_utilization,
            max_model_len=args.max_model_len,
        )
    except FactbenchError as e:
        raise SystemExit(f"error: {e}") from None
    load_s = time.perf_counter() - start

    start = time.perf_counter()
    greedy = engine.generate(prompts, GenerationParams(max_new_tokens=16, seed=args.seed))
    greedy_s = time.perf_counter() - start
    preds = [c[0] for c in greedy]

    sampled = GenerationParams(max_new_tokens=16, temperature=0.5, top_k=40, n=16, seed=args.seed)
    few = prompts[: args.sampled_prompts]
    first = engine.generate(few, sampled)
    second = engine.generate(few, sampled)
    other_batch = few[::-1][: max(1, len(few) // 2)]
    third = dict(zip(other_batch, engine.generate(other_batch, sampled), strict=True))
    by_prompt = dict(zip(few, first, strict=True))

    print(
        json.dumps(
            {
                "engine": engine.describe(),
                "questions": len(prompts),
                "load_seconds": round(load_s, 1),
                "greedy_seconds": round(greedy_s, 2),
                "questions_per_second": round(len(prompts) / greedy_s, 1),
                "exact_match": sum(exact_match(p, f.answers) for p, f in zip(preds, facts, strict=True)) / len(facts),
                "contains": sum(contains(p, f.answers) for p, f in zip(preds, facts, strict=True)) / len(facts),
                "examples": [
                    {"question": f.question, "answers": list(f.answers), "prediction": p}
                    for f, p in zip(facts[:5], preds[:5], strict=True)
                ],
                "sampled": {
                    "prompts": len(few),
                    "params": sampled.describe(),
                    "distinct_completions_per_prompt": [len(set(c)) for c in first],
                    "same_batch_runs_agree": first == second,
                    "other_batch_agrees": all(third[p] == by_prompt[p] for p in other_batch),
                },
            },
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
