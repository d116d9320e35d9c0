"""One training step of SmolLM2-135M with 1 and with 2 CPU threads: why `factbench demo` trains side by side.

    python benchmarks/threads_per_fine_tune.py --steps 6

A step is forward + loss + backward + AdamW (fused, the Trainer's default) on one batch of 8
`Q: ...\\nA: ...` examples. Each thread count runs in a child process of its own (torch's thread
pool is set once per process), `--steps` timed steps after one warm-up, median reported. Two
fine-tunes with one thread each make 2 steps in the 1-thread time; one fine-tune with 2 threads
makes 1 step in the 2-thread time: the throughput ratio is 2 * t(2 threads) / t(1 thread).
Run it on an idle machine. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def child(threads: int, steps: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from factbench import models

    loaded = models.load("smollm2-135m")
    model, tok = loaded.model, loaded.tokenizer
    texts = [f"Q: Which country is the city number {i} located in?\nA: United States of America" for i in range(8)]
    batch = tok(texts, return_tensors="pt", padding=True)
    batch["labels"] = batch["input_ids"].clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    model.train()
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return {"threads": threads, "step_seconds": [round(t, 3) for t in times[1:]],
            "median_s": round(statistics.median(times[1:]), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps)))
        return
    runs = {}
    for threads in (1, 2):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        out = subprocess.run([sys.executable, __file__, "--child", str(threads), "--steps", str(args.steps)],
                             env=env, capture_output=True, text=True, check=True).stdout
        runs[threads] = json.loads(out.strip().splitlines()[-1])
    ratio = 2 * runs[2]["median_s"] / runs[1]["median_s"]
    print(json.dumps({"runs": list(runs.values()), "side_by_side_throughput_vs_2_threads": round(ratio, 2)}, indent=1))


if __name__ == "__main__":
    main()
