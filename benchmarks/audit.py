"""Wall time of one audit of a SmolLM2-135M fine-tune, `small` preset, three ways, in one run.

    OMP_NUM_THREADS=1 python benchmarks/audit.py --tuned runs/outside-ft/model \\
        --lmeval-base runs/audit-lmeval/base --runs 3 --lmeval-runs 2 --uncached-runs 1

1. **factbench, base cached**: `factbench audit --base smollm2-135m --tuned T` (the bundled base
   answers: the fine-tune's 1,200 questions are the only generation);
2. **factbench, base not cached**: the same with `--no-base-cache` and an empty `FACTBENCH_CACHE`
   (the base's 4,800 answers are generated too);
3. **through lm-eval**: `lm_eval --model hf --tasks factforget_audit --metadata '{"prompts": 1}'
   --log_samples` for the fine-tune, then `factbench audit` on that log and an existing lm-eval log
   of the base (`--lmeval-base`): the lm-eval equivalent of "base cached".

Each is a whole process (model loading included), timed by turns; prints a Markdown table with
the median, every run, and the ratios against (1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def timed(cmd: list[str], env: dict | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tuned", required=True, help="the fine-tune's folder")
    parser.add_argument("--lmeval-base", required=True, help="an lm-eval --log_samples folder of the base (audit task)")
    parser.add_argument("--runs", type=int, default=3, help="runs of the cached factbench audit")
    parser.add_argument("--lmeval-runs", type=int, default=2)
    parser.add_argument("--uncached-runs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--keep", type=Path, help="keep the cards and the last lm-eval log of the fine-tune here")
    args = parser.parse_args()

    from factbench import models, tasks_dir

    smol = str(models.smollm2_folder())
    work = args.keep or Path(tempfile.mkdtemp(prefix="audit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    audit = [str(BIN / "factbench"), "audit", "--base", "smollm2-135m", "--tuned", args.tuned,
             "--batch-size", str(args.batch_size), "--out", str(work / "card.json")]
    times: dict[str, list[float]] = {"cached": [], "uncached": [], "lm-eval": []}
    for i in range(max(args.runs, args.lmeval_runs, args.uncached_runs)):
        if i < args.runs:
            times["cached"].append(timed(audit))
        if i < args.lmeval_runs:
            out = work / "lmeval-tuned"
            shutil.rmtree(out, ignore_errors=True)
            lm_eval = [str(BIN / "lm_eval"), "--model", "hf", "--model_args", f"pretrained={args.tuned},dtype=float32",
                       "--tasks", "factforget_audit", "--include_path", str(tasks_dir()), "--metadata",
                       '{"prompts": 1}', "--device", "cpu", "--batch_size", str(args.batch_size), "--log_samples",
                       "--output_path", str(out)]
            started = time.perf_counter()
            timed(lm_eval)
            timed([str(BIN / "factbench"), "audit", "--base", args.lmeval_base, "--tuned", str(out),
                   "--out", str(work / "card-lmeval.json")])
            times["lm-eval"].append(time.perf_counter() - started)
        if i < args.uncached_runs:
            cache = work / f"cache-{i}"
            env = os.environ | {"FACTBENCH_CACHE": str(cache)}
            shutil.copytree(Path(smol).parent, cache / "models")  # the converted SmolLM2, no audit answers
            uncached = [*audit[:-1], str(work / "card-uncached.json"), "--no-base-cache"]
            times["uncached"].append(timed(uncached, env))
            # The base answers asked now must be the bundled ones: same weights, engine, dtype, preset.
            (fresh,) = (cache / "audit-base").glob("*/profile.jsonl")
            from factbench import knowledge
            from factbench.auditing import base

            bundled = knowledge.load_profile(base.BUNDLED_DIR / "smollm2-135m-small").rows
            same = knowledge.load_profile(fresh.parent).rows == bundled
            print(f"base answers asked now {'equal' if same else 'DIFFER FROM'} the bundled ones")
            shutil.rmtree(cache)
    cached = statistics.median(times["cached"])
    print("| audit of one fine-tune, small preset | median s | runs (s) | vs factbench cached |")
    print("|---|---:|---|---:|")
    for name, label in (("cached", "factbench, base answers cached (bundled)"),
                        ("uncached", "factbench, base asked too (not cached)"),
                        ("lm-eval", "lm_eval --model hf (fine-tune) + factbench audit on the logs")):
        if times[name]:
            m = statistics.median(times[name])
            print(f"| {label} | {m:.1f} | {', '.join(f'{t:.1f}' for t in times[name])} | {m / cached:.2f}x |")


if __name__ == "__main__":
    main()
