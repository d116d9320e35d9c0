"""`factbench eval --sets` vs `lm_eval --model hf` on the same model and the same questions.

    python benchmarks/lmeval_vs_factbench.py                          # 1000 pool questions, 3 runs each
    python benchmarks/lmeval_vs_factbench.py --questions 100 --runs 1  # a quick check
    python benchmarks/lmeval_vs_factbench.py --set heldout --split-dir splits/smol --device cuda

Each run is the whole command a user types, timed from start to exit in a fresh process: model
loading, and for lm-eval the indexing of its ~14k built-in task configs (about 15 s on a busy
2-core CPU), are part of what a user waits for. lm-eval runs as `factbench-eval` (lm-eval's own
command line, plus `--include_path` for the factforget tasks when they are not installed inside
lm-eval) with `--batch_size` fixed (default 32; "auto" probes memory and is not comparable).
factbench runs with its hf engine's default batch size (32). Both use the same dtype (default
float32; bf16 may break near-ties differently in the two code paths).

Predictions must be identical, question by question (joined on the fact id), or the script exits
with status 1 after listing differences. Prints one JSON object: medians, all run times, the
ratio lm-eval / factbench, and EM of each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from factbench import models, question_sets, sample_logs


def timed_run(cmd: list[str], log: Path) -> float:
    start = time.perf_counter()
    with open(log, "w") as f:
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{cmd[2]} failed (exit {done.returncode}); see {log}:\n{log.read_text()[-3000:]}")
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=1000, help="first N questions of the set (default: 1000)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--set", default="pool", choices=list(question_sets.SETS), help="question set (default: pool)")
    ap.add_argument("--split-dir", help="split folder for the split sets (default: the bundled one)")
    ap.add_argument("--model", help="model folder (default: the bundled SmolLM2-135M-Instruct)")
    ap.add_argument("--dtype", default="float32", help="for both (default: float32)")
    ap.add_argument("--lm-eval-batch-size", default="32", help="lm-eval --batch_size (default: 32)")
    ap.add_argument("--device", default="cpu", help="lm-eval --device (factbench picks CUDA when present)")
    ap.add_argument("--out", type=Path, help="keep samples and logs here (default: a temporary folder)")
    args = ap.parse_args()

    model = args.model or str(models.smollm2_folder())
    task = question_sets.task_name(args.set)
    out = args.out or Path(tempfile.mkdtemp(prefix="lmeval-vs-factbench-"))
    out.mkdir(parents=True, exist_ok=True)
    split = ["--split-dir", args.split_dir] if args.split_dir else []
    metadata = ["--metadata", json.dumps({"split": args.split_dir})] if args.split_dir else []
    times: dict[str, list[float]] = {"factbench": [], "lm_eval": []}
    for run in range(args.runs):
        fb, lm = out / f"factbench-{run}", out / f"lm_eval-{run}"
        times["factbench"].append(timed_run(
            [sys.executable, "-m", "factbench.cli", "eval", "--model", model, "--dtype", args.dtype,
             "--sets", args.set, *split, "--limit", str(args.questions), "--out", str(fb)], out / f"factbench-{run}.log"))
        times["lm_eval"].append(timed_run(
            [sys.executable, "-m", "factbench.lmeval_cli", "--model", "hf",
             "--model_args", f"pretrained={model},dtype={args.dtype}", "--tasks", task, *metadata,
             "--limit", str(args.questions), "--device", args.device, "--batch_size", args.lm_eval_batch_size,
             "--log_samples", "--output_path", str(lm)], out / f"lm_eval-{run}.log"))
        ours, theirs = sample_logs.read(sample_logs.find(fb, task)), sample_logs.read(sample_logs.find(lm, task))
        differ = [(fid, ours[fid]["completion"], theirs.get(fid, {}).get("completion"))
                  for fid in ours if ours[fid] != theirs.get(fid)]
        if differ or len(ours) != len(theirs):
            print(f"run {run}: {len(differ)} of {len(ours)} predictions differ (factbench vs lm-eval):", file=sys.stderr)
            for fid, a, b in differ[:10]:
                print(f"  {fid}: {a!r} vs {b!r}", file=sys.stderr)
            return 1

    median = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({
        "task": task, "questions": len(ours), "runs": args.runs, "model": model, "dtype": args.dtype,
        "device": args.device, "lm_eval_batch_size": args.lm_eval_batch_size, "factbench_batch_size": 32,
        "threads": os.environ.get("OMP_NUM_THREADS", "unset"), "cpu": platform.processor() or platform.machine(),
        "identical_predictions": True,
        "em": {"factbench": sum(r["em"] for r in ours.values()) / len(ours),
               "lm_eval": sum(r["em"] for r in theirs.values()) / len(theirs)},
        "median_seconds": {k: round(v, 2) for k, v in median.items()},
        "all_seconds": {k: [round(t, 2) for t in v] for k, v in times.items()},
        "lm_eval_over_factbench": round(median["lm_eval"] / median["factbench"], 2),
        "samples": str(out),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
